public import CardDeskAPI
public import CardDeskCore
import Foundation

/// A renewal's progress, one item per certificate on the card. Stored after every step, so an interrupted renewal
/// continues from where it stopped.
///
/// The card's key pairs are renewed one at a time, signing (9C) first and then authentication (9A), so that at every
/// moment one of the two pairs is valid and matches its key, and vouches for the card when an interrupted renewal
/// resumes. For each certificate: pending → keyAuthorised (the server answered the card's management-key witness so
/// the card could generate the slot's new key) → issued (the CA issued a certificate for that key) →
/// writeAuthorised (the server answered the witness again, to write it, after a card reset) → done (the card proved
/// it signs with the new key; the old certificate is revoked, superseded).
public struct RenewalState: Codable, Hashable, Sendable {
    public typealias Step = RenewalStep

    public struct Item: Codable, Hashable, Sendable {
        public let profile: CertificateProfileKind
        public var step: Step
        /// The certificate being replaced.
        public let oldSerial: SerialNumber
        /// The replacement, once issued.
        public var newSerial: SerialNumber?
        public var newCertificate: [UInt8]?

        init(profile: CertificateProfileKind, step: Step, oldSerial: SerialNumber, newSerial: SerialNumber? = nil, newCertificate: [UInt8]? = nil) {
            self.profile = profile
            self.step = step
            self.oldSerial = oldSerial
            self.newSerial = newSerial
            self.newCertificate = newCertificate
        }

        private enum CodingKeys: String, CodingKey { case profile, step, oldSerial, newSerial, newCertificate }

        // The certificate is stored as base64 text. States written before that hold it as an array of numbers (the
        // default coding of [UInt8]: thousands of numbers to write and parse at every step, a quarter of the server's
        // CPU time per renewal); those are still read, so a renewal interrupted across an upgrade resumes.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            profile = try container.decode(CertificateProfileKind.self, forKey: .profile)
            step = try container.decode(Step.self, forKey: .step)
            oldSerial = try container.decode(SerialNumber.self, forKey: .oldSerial)
            newSerial = try container.decodeIfPresent(SerialNumber.self, forKey: .newSerial)
            if let text = try? container.decodeIfPresent(String.self, forKey: .newCertificate) {
                guard let bytes = Data(base64Encoded: text) else {
                    throw DecodingError.dataCorruptedError(forKey: .newCertificate, in: container, debugDescription: "the stored certificate is not base64")
                }
                newCertificate = Array(bytes)
            } else {
                newCertificate = try container.decodeIfPresent([UInt8].self, forKey: .newCertificate)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(profile, forKey: .profile)
            try container.encode(step, forKey: .step)
            try container.encode(oldSerial, forKey: .oldSerial)
            try container.encodeIfPresent(newSerial, forKey: .newSerial)
            try container.encodeIfPresent(newCertificate.map { Data($0).base64EncodedString() }, forKey: .newCertificate)
        }
    }

    public var items: [Item]

    /// The order slots are renewed in: the signing pair first, while the authentication pair (which signs the card in)
    /// stays valid; then the authentication pair, while the renewed signing pair vouches for the card.
    public static let order: [CertificateProfileKind] = [.signing, .authentication]

    public var isDone: Bool { items.allSatisfy { $0.step == .done } }

    func index(of profile: CertificateProfileKind) throws -> Int {
        guard let index = items.firstIndex(where: { $0.profile == profile }) else {
            throw CardDeskError(.invalidInput, "This renewal has no \(profile) certificate.")
        }
        return index
    }
}
