import CardDeskCore
import CardDeskStore

/// A card and what is in force on it, as sign-in, renewal and unlock see it: read once per request (the card, its
/// certificates, its unfinished renewal), then asked.
struct CardInForce: Sendable {
    let card: CardRecord
    /// Per profile, the certificate currently in force on the card (the newest good one).
    let current: [CertificateProfileKind: CertificateRecord]
    /// The card's unfinished renewal, if any, with its state.
    let active: (record: RenewalRecord, state: RenewalState)?
    /// The card's good certificates (those in force, and those an unfinished renewal has issued), newest first.
    let certificates: [CertificateRecord]

    /// The card `serial`, which must be known and not cancelled, and must hold a good certificate.
    static func load(_ serial: String, store: any RenewalStore) async throws -> CardInForce {
        let card = try await requireCard(serial, store: store)
        var active: (RenewalRecord, RenewalState)?
        if let record = try await store.activeRenewal(cardSerial: serial) { active = (record, try RenewalState(stored: record.state)) }
        // A certificate the unfinished renewal issued is not in force until the card has confirmed it, even when
        // the server stopped before it could record the issuance in the renewal's state.
        let pending = Set(active?.1.items.filter { $0.step != .done }.map(\.profile) ?? [])
        let certificates = try await store.goodCertificates(cardSerial: serial)
        var current: [CertificateProfileKind: CertificateRecord] = [:]
        for record in certificates {
            if let active, record.renewalID == active.0.id, pending.contains(record.profile) { continue }
            if current[record.profile] == nil { current[record.profile] = record }
        }
        guard !current.isEmpty else {
            throw CardDeskError(.certificatesExpired, "This card holds no valid certificate: ask your Registration Authority.")
        }
        return CardInForce(card: card, current: current, active: active, certificates: certificates)
    }

    static func requireCard(_ serial: String, store: any RenewalStore) async throws -> CardRecord {
        guard let card = try await store.card(serial: serial) else {
            throw CardDeskError(.unknownCard, "This card (\(serial)) is not known to CardDesk. Ask your Registration Authority.")
        }
        guard card.status == .active else {
            throw CardDeskError(.unknownCard, "This card (\(serial)) has been cancelled. Ask your Registration Authority for a new one.")
        }
        return card
    }

    /// The earliest expiry of the certificates in force.
    var earliestExpiry: Timestamp { current.values.map(\.notAfter).min()! }

    /// The certificates a card's key may match, for each of `profiles`: the one in force, or, when a renewal has
    /// issued its replacement, the newly issued one (the card may hold either, depending on where the renewal stopped).
    /// Only a good certificate vouches for anything: `certificates` (and so `current`) hold no other, as read (callers
    /// refuse an expired one with their own message).
    func candidates(profiles: Set<CertificateProfileKind>) -> [CertificateRecord] {
        var candidates = CertificateProfileKind.allCases.filter(profiles.contains).compactMap { current[$0] }
        for item in active?.state.items ?? [] where profiles.contains(item.profile) && item.step >= .issued {
            if let serial = item.newSerial, let record = certificates.first(where: { $0.serial == serial }) { candidates.append(record) }
        }
        return candidates
    }
}
