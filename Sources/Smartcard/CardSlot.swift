public import CardDeskCore

/// A key slot on a card, named by its PIV key reference (NIST SP 800-73-4, table 4b).
public struct CardSlot: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let keyReference: UInt8

    public init?(keyReference: UInt8) {
        guard keyReference == 0x9A || keyReference == 0x9C || (0x82...0x95).contains(keyReference) else { return nil }
        self.keyReference = keyReference
    }

    private init(_ keyReference: UInt8) { self.keyReference = keyReference }

    /// PIV authentication (9A): the key that logs the holder in.
    public static let authentication = CardSlot(0x9A)
    /// Digital signature (9C): the key that signs, PIN always required.
    public static let signing = CardSlot(0x9C)

    /// The slot that holds the key and certificate of a profile: 9A for authentication, 9C for signing.
    public static func main(for profile: CertificateProfileKind) -> CardSlot {
        profile == .authentication ? .authentication : .signing
    }

    public var isRetired: Bool { (0x82...0x95).contains(keyReference) }

    public var description: String {
        let hex = String(keyReference, radix: 16, uppercase: true)
        switch self {
        case .authentication: return "9A (authentication)"
        case .signing: return "9C (signing)"
        default: return "\(hex) (retired)"
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.keyReference < rhs.keyReference }
}

/// The key types a card generates: the card holder profiles accept RSA-2048 (default) and ECDSA P-256.
public enum CardKeyAlgorithm: String, Hashable, Sendable, Codable, CaseIterable {
    case rsa2048
    case p256

    /// PIV algorithm identifier (SP 800-78-4 table 6-2).
    public var pivAlgorithmID: UInt8 {
        switch self {
        case .rsa2048: 0x07
        case .p256: 0x11
        }
    }
}
