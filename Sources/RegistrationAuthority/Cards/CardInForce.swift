import CardDeskCore
import CardDeskStore

/// A card and the certificates in force on it, as both sign-in and renewal see them.
enum CardInForce {
    /// The card and, per profile, the certificate currently in force on it (the newest good one).
    static func load(_ serial: String, store: any RenewalStore) async throws -> (CardRecord, [CertificateProfileKind: CertificateRecord]) {
        let card = try await requireCard(serial, store: store)
        var current: [CertificateProfileKind: CertificateRecord] = [:]
        // A certificate the unfinished renewal issued is not in force until the card has confirmed it, even when
        // the server stopped before it could record the issuance in the renewal's state.
        var pending: Set<CertificateProfileKind> = []
        var activeID: String?
        if let active = try await store.activeRenewal(cardSerial: serial) {
            activeID = active.id
            pending = Set(try RenewalEngine.decode(active.state).items.filter { $0.step != .done }.map(\.profile))
        }
        for record in try await store.certificates(cardSerial: serial) where record.status == .good {
            if let activeID, record.renewalID == activeID, pending.contains(record.profile) { continue }
            if current[record.profile] == nil { current[record.profile] = record }
        }
        guard !current.isEmpty else {
            throw CardDeskError(.certificatesExpired, "This card holds no valid certificate: ask your Registration Authority.")
        }
        return (card, current)
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

    /// The certificates a card's key may match, for each of `profiles`: the one in force, or, when a renewal has
    /// issued its replacement, the newly issued one (the card may hold either, depending on where the renewal stopped).
    static func candidates(
        card: CardRecord, current: [CertificateProfileKind: CertificateRecord], store: any RenewalStore, profiles: Set<CertificateProfileKind>
    ) async throws -> [CertificateRecord] {
        var candidates = CertificateProfileKind.allCases.filter(profiles.contains).compactMap { current[$0] }
        if let active = try await store.activeRenewal(cardSerial: card.serial) {
            for item in try RenewalEngine.decode(active.state).items where profiles.contains(item.profile) && item.step >= .issued {
                if let serial = item.newSerial, let record = try await store.certificate(serial: serial) { candidates.append(record) }
            }
        }
        // Only a good certificate vouches for anything (callers refuse an expired one with their own message).
        return candidates.filter { $0.status == .good }
    }
}
