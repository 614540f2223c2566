public import CardDeskAPI
public import CardDeskCore

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
