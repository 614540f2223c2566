public import CardDeskCore
public import Foundation
public import Smartcard

/// The JSON bodies of the renewal API, shared by the server and the `carddesk` client.
public enum RenewalAPI {
    public struct Challenge: Codable, Sendable {
        public let challenge: String
        public init(challenge: String) { self.challenge = challenge }
    }

    /// Starting or resuming a renewal: the card's signature over `RenewalStartMessage` and, when the agent knows the
    /// card's management-key algorithm (the card says), the card's management-key witness: its answer then comes with
    /// the renewal (`RenewalView.administration`), one request fewer than `Administer`.
    public struct Start: Codable, Sendable {
        public let cardSerial: String
        public let challenge: String
        public let signature: Data
        public let witness: Data?

        public init(cardSerial: String, challenge: String, signature: Data, witness: Data? = nil) {
            self.cardSerial = cardSerial
            self.challenge = challenge
            self.signature = signature
            self.witness = witness
        }
    }

    /// The card's management-key witness (encrypted), for the slot of `profile`.
    public struct Administer: Codable, Sendable {
        public let profile: CertificateProfileKind
        public let witness: Data
        public init(profile: CertificateProfileKind, witness: Data) {
            self.profile = profile
            self.witness = witness
        }
    }

    /// The server's answer: the witness decrypted, and its own challenge for the card.
    public struct Administration: Codable, Hashable, Sendable {
        public let witness: Data
        public let challenge: Data
        public init(witness: Data, challenge: Data) {
            self.witness = witness
            self.challenge = challenge
        }
    }

    /// A CSR signed by the key just generated on the card, with the card's attestation of that key (the attestation
    /// certificate and the card's attestation certificate that signed it) when it has one.
    public struct Submit: Codable, Sendable {
        public let profile: CertificateProfileKind
        public let csr: Data
        public let attestation: Data?
        public let attestationIssuer: Data?
        public init(profile: CertificateProfileKind, csr: Data, attestation: Data? = nil, attestationIssuer: Data? = nil) {
            self.profile = profile
            self.csr = csr
            self.attestation = attestation
            self.attestationIssuer = attestationIssuer
        }
    }

    public struct Issued: Codable, Sendable {
        public let certificate: Data
        public init(certificate: Data) { self.certificate = certificate }
    }

    public struct Confirm: Codable, Sendable {
        public let profile: CertificateProfileKind
        public let signature: Data
        /// The next key's certificate request, in the same request (a server whose views say
        /// `takesNextWithConfirmation`): the answer's item for it then carries its new certificate.
        public let next: Submit?
        public init(profile: CertificateProfileKind, signature: Data, next: Submit? = nil) {
            self.profile = profile
            self.signature = signature
            self.next = next
        }
    }
}


/// Where each certificate of a renewal has got to (see `RenewalState` on the server).
public enum RenewalStep: String, Codable, Hashable, Sendable, Comparable {
    case pending
    case keyAuthorised
    case issued
    case writeAuthorised
    case done

    private var order: Int { [.pending, .keyAuthorised, .issued, .writeAuthorised, .done].firstIndex(of: self)! }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.order < rhs.order }
}

/// A renewal as the agent sees it.
public struct RenewalView: Codable, Hashable, Sendable {
    public struct Item: Codable, Hashable, Sendable {
        public let profile: CertificateProfileKind
        public let step: RenewalStep
        public let newCertificate: Data?

        public init(profile: CertificateProfileKind, step: RenewalStep, newCertificate: Data?) {
            self.profile = profile
            self.step = step
            self.newCertificate = newCertificate
        }
    }

    public let id: String
    /// The bearer token for the following steps; only in the answer that starts or resumes the renewal.
    public let token: String?
    public let done: Bool
    /// The PIV algorithm of the card's management key (GENERAL AUTHENTICATE names it).
    public let managementKeyAlgorithm: UInt8?
    public let items: [Item]
    /// In the answers that start a renewal and that finish it: whether the card's PUK, released for an unlock that
    /// stopped, is still to be changed (nil: not said; the agent then asks the card's renewal status).
    public let pukRotationPending: Bool?
    /// In the answer to a start that carried the card's management-key witness: its answer.
    public let administration: RenewalAPI.Administration?
    /// In the answers that start or resume a renewal (with its token): the server takes a confirmation and the next
    /// key's certificate request in one request (`RenewalAPI.Confirm.next`); nil from a server that does not (the agent
    /// then sends them apart).
    public let takesNextWithConfirmation: Bool?

    public init(
        id: String, token: String?, done: Bool, managementKeyAlgorithm: UInt8?, items: [Item], pukRotationPending: Bool? = nil,
        administration: RenewalAPI.Administration? = nil, takesNextWithConfirmation: Bool? = nil
    ) {
        self.takesNextWithConfirmation = takesNextWithConfirmation
        self.pukRotationPending = pukRotationPending
        self.administration = administration
        self.id = id
        self.token = token
        self.done = done
        self.managementKeyAlgorithm = managementKeyAlgorithm
        self.items = items
    }
}

/// What `carddesk status` shows about renewal: whether it is available, and from when.
public struct CardRenewalStatus: Codable, Hashable, Sendable {
    public let cardSerial: String
    public let renewalAvailable: Bool
    /// The first day renewal is offered, when it is not offered yet.
    public let opensOn: Timestamp?
    public let message: String
    public let renewalInProgress: Bool
    /// A PUK released for an unlock has not been changed on the card yet: the agent changes it at this contact.
    public let pukRotationPending: Bool

    public init(cardSerial: String, renewalAvailable: Bool, opensOn: Timestamp?, message: String, renewalInProgress: Bool, pukRotationPending: Bool = false) {
        self.cardSerial = cardSerial
        self.renewalAvailable = renewalAvailable
        self.opensOn = opensOn
        self.message = message
        self.renewalInProgress = renewalInProgress
        self.pukRotationPending = pukRotationPending
    }
}

/// The error body every API failure carries: `{"error": {"code": "…", "message": "…"}}`.
public struct APIErrorBody: Codable, Sendable {
    public struct Detail: Codable, Sendable {
        public let code: String
        public let message: String
        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }
    public let error: Detail
    public init(error: Detail) { self.error = error }
}

/// The bytes a card signs with its authentication key to start or resume a renewal.
public enum RenewalStartMessage {
    public static func make(challenge: String, cardSerial: String) -> [UInt8] {
        Array("carddesk-renewal-v1\n\(challenge)\n\(cardSerial)".utf8)
    }
}

/// The bytes a card signs with its new key to confirm a certificate is installed.
public enum RenewalConfirmationMessage {
    public static func make(renewalID: String, profile: CertificateProfileKind, serial: SerialNumber) -> [UInt8] {
        Array("carddesk-installed-v1\n\(renewalID)\n\(profile.rawValue)\n\(serial.hex)".utf8)
    }
}

/// The bytes a card signs (with either key pair) to have a released PUK rotated at its next contact.
public enum PUKRotationMessage {
    public static func make(challenge: String, cardSerial: String) -> [UInt8] {
        Array("carddesk-puk-rotation-v1\n\(challenge)\n\(cardSerial)".utf8)
    }
}

/// The bytes a card signs with its authentication key to sign in.
public enum LoginMessage {
    public static func make(challenge: String, cardSerial: String) -> [UInt8] {
        Array("carddesk-login-v1\n\(challenge)\n\(cardSerial)".utf8)
    }
}

/// What the card signs to consent to a new unlock address: the server's challenge, the card, and the exact address,
/// so the signature cannot be used for another address or another card.
public enum ContactChangeMessage {
    public static func make(challenge: String, cardSerial: String, channel: ContactChannel, address: String) -> [UInt8] {
        Array("carddesk-contact-change-v1\n\(challenge)\n\(cardSerial)\n\(channel.rawValue)\n\(address)".utf8)
    }
}

/// Signing in with a card, and the session that results.
public enum LoginAPI {
    /// Signing in: the card's signature over `LoginMessage`.
    public typealias Login = CardSignedChallenge

    public struct ChooseRole: Codable, Sendable {
        /// The role's number as the list shows it, from 1.
        public let number: Int
        public init(number: Int) { self.number = number }
    }
}

/// A signed-in session as the agent and the pages see it.
public struct SessionView: Codable, Hashable, Sendable {
    public struct Certificate: Codable, Hashable, Sendable {
        public let profile: CertificateProfileKind
        public let serial: String
        public let notAfter: Timestamp
        public init(profile: CertificateProfileKind, serial: String, notAfter: Timestamp) {
            self.profile = profile
            self.serial = serial
            self.notAfter = notAfter
        }
    }

    public let id: String
    /// Only in the answer to the sign-in itself.
    public let token: String?
    public let userID: String
    public let name: String
    public let organisation: String
    /// Every role the user holds, as `CODE@ORG`, in the order the directory lists them.
    public let roles: [String]
    /// The role in use; nil until one of several is chosen.
    public let role: String?
    public let certificates: [Certificate]
    public let renewal: CardRenewalStatus

    public init(id: String, token: String?, userID: String, name: String, organisation: String, roles: [String], role: String?,
                certificates: [Certificate], renewal: CardRenewalStatus) {
        self.id = id
        self.token = token
        self.userID = userID
        self.name = name
        self.organisation = organisation
        self.roles = roles
        self.role = role
        self.certificates = certificates
        self.renewal = renewal
    }
}

/// A card's answer to a server challenge: which card, which challenge, and its signature (by the key in slot 9A).
public struct CardSignedChallenge: Codable, Sendable {
    public let cardSerial: String
    public let challenge: String
    public let signature: Data

    public init(cardSerial: String, challenge: String, signature: Data) {
        self.cardSerial = cardSerial
        self.challenge = challenge
        self.signature = signature
    }
}
