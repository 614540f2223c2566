public import CardDeskCore
public import Foundation

/// Enrolling a blank PIV card at a workstation with an RA's single-use token (`/api/v1/enrolments…`). The passcode
/// never appears here: the holder types it at the workstation and only the card sees it.
public enum EnrolmentAPI {
    public struct Begin: Codable, Sendable {
        public let token: String
        public init(token: String) { self.token = token }
    }

    /// What the card is given: its identity (the GUID for its CHUID), its own management key and PUK (set on the card
    /// at once; the server keeps them sealed), and the key type to generate.
    public struct Begun: Codable, Sendable {
        public let enrolmentID: String
        public let cardSerial: String
        public let userID: String
        public let guid: Data
        public let managementKeyAlgorithm: UInt8
        public let managementKey: Data
        public let puk: String
        public let keyAlgorithm: String

        public init(enrolmentID: String, cardSerial: String, userID: String, guid: Data, managementKeyAlgorithm: UInt8, managementKey: Data, puk: String, keyAlgorithm: String) {
            self.enrolmentID = enrolmentID
            self.cardSerial = cardSerial
            self.userID = userID
            self.guid = guid
            self.managementKeyAlgorithm = managementKeyAlgorithm
            self.managementKey = managementKey
            self.puk = puk
            self.keyAlgorithm = keyAlgorithm
        }
    }

    /// A CSR signed by the key just generated on the card, with the card's attestation of that key when it has one.
    public struct Submit: Codable, Sendable {
        public let profile: CertificateProfileKind
        public let csr: Data
        public let attestation: Data?
        public let attestationIssuer: Data?
        public init(profile: CertificateProfileKind, csr: Data, attestation: Data?, attestationIssuer: Data?) {
            self.profile = profile
            self.csr = csr
            self.attestation = attestation
            self.attestationIssuer = attestationIssuer
        }
    }

    /// The card's authentication key signs `EnrolmentMessage` to finish.
    public struct Complete: Codable, Sendable {
        public let signature: Data
        public init(signature: Data) { self.signature = signature }
    }
}

/// The bytes a newly enrolled card signs with its authentication key to finish its enrolment.
public enum EnrolmentMessage {
    public static func make(enrolmentID: String, cardSerial: String) -> [UInt8] {
        Array("carddesk-enrolled-v1\n\(enrolmentID)\n\(cardSerial)".utf8)
    }
}
