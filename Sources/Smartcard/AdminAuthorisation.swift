import Crypto
import Foundation

/// One card-administration operation, as the server authorises it.
///
/// The card keeps its management key; so does the server (sealed). Neither the workstation nor the user ever holds it.
/// For each operation the card issues a fresh challenge; the server answers with
/// `HMAC-SHA256(managementKey, "carddesk-admin-v1" ‖ challenge ‖ operation)` for that one operation on that one
/// card. The card accepts the answer once, for exactly that operation: a response to "write certificate X" cannot
/// write certificate Y, and no response can be replayed. (A PIV backend maps this onto GENERAL AUTHENTICATE with
/// the management key; there the operation binding is enforced by the server answering one challenge per operation.)
public enum AdminOperation: Hashable, Sendable, Codable {
    /// Generate a key pair in `slot` (a staging slot during renewal, or a main slot when a card is issued).
    case generateKey(slot: CardSlot, algorithm: CardKeyAlgorithm)
    /// Install exactly this certificate into `slot`; when `keyFrom` is a staging slot its key moves into `slot` in
    /// the same step and the previous key is kept, retired.
    case installCertificate(slot: CardSlot, keyFrom: CardSlot?, certificateSHA256: [UInt8])
    /// Reset the PIN and its retry counter (self-service unlock).
    case resetPIN

    /// The bytes the authorisation MAC covers.
    public var encoded: [UInt8] {
        switch self {
        case .generateKey(let slot, let algorithm):
            return Array("generateKey".utf8) + [slot.keyReference, algorithm.pivAlgorithmID]
        case .installCertificate(let slot, let keyFrom, let hash):
            return Array("installCertificate".utf8) + [slot.keyReference, keyFrom?.keyReference ?? 0] + hash
        case .resetPIN:
            return Array("resetPIN".utf8)
        }
    }

    public var description: String {
        switch self {
        case .generateKey(let slot, let algorithm): "generate a \(algorithm.rawValue) key in slot \(slot)"
        case .installCertificate(let slot, _, _): "install a certificate in slot \(slot)"
        case .resetPIN: "reset the passcode"
        }
    }
}

/// The server's answer to a card's admin challenge, for one operation.
public struct AdminAuthorisation: Hashable, Sendable, Codable {
    public let challenge: [UInt8]
    public let response: [UInt8]

    public init(challenge: [UInt8], response: [UInt8]) {
        self.challenge = challenge
        self.response = response
    }

    /// Computes the answer. Only holders of the management key (the server, and the card itself) can.
    public static func answer(challenge: [UInt8], operation: AdminOperation, managementKey: [UInt8]) -> AdminAuthorisation {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("carddesk-admin-v1".utf8) + challenge + operation.encoded, using: SymmetricKey(data: managementKey)
        )
        return AdminAuthorisation(challenge: challenge, response: Array(mac))
    }

    /// Checks an answer in constant time.
    public func isValid(for operation: AdminOperation, managementKey: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(
            response, authenticating: Array("carddesk-admin-v1".utf8) + challenge + operation.encoded, using: SymmetricKey(data: managementKey)
        )
    }
}
