public import CardDeskAPI
public import CardDeskCore

/// A renewal's progress, one item per certificate on the card. Stored after every step, so an interrupted renewal
/// continues from where it stopped.
///
/// For each certificate: pending → keyAuthorised (the server let the card generate a new key in its staging slot)
/// → issued (the CA issued a certificate for that key) → writeAuthorised (the server let the card install exactly
/// that certificate) → done (the card proved it signs with the new key; the old certificate is revoked, superseded).
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
    }

    public var items: [Item]

    public var isDone: Bool { items.allSatisfy { $0.step == .done } }

    func index(of profile: CertificateProfileKind) throws -> Int {
        guard let index = items.firstIndex(where: { $0.profile == profile }) else {
            throw CardDeskError(.invalidInput, "This renewal has no \(profile) certificate.")
        }
        return index
    }
}
