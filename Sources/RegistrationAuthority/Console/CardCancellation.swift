public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority

/// Cancelling a card permanently from the RA console: the card can never be used again and every certificate on it
/// is revoked. Run again after an interruption, it revokes whatever is still good.
extension RAConsole {
    /// Why a card is cancelled, as the console offers it, and the RFC 5280 reason its certificates are revoked with.
    public enum CancelReason: String, CaseIterable, Sendable {
        case lostOrStolen
        case leftOrganisation
        case noLongerNeeded
        case damaged

        public var description: String {
            switch self {
            case .lostOrStolen: "lost or stolen"
            case .leftOrganisation: "the holder left the organisation"
            case .noLongerNeeded: "no longer needed"
            case .damaged: "damaged or not working"
            }
        }

        public var revocation: RevocationReason {
            switch self {
            case .lostOrStolen: .keyCompromise
            case .leftOrganisation: .affiliationChanged
            case .noLongerNeeded, .damaged: .cessationOfOperation
            }
        }
    }

    /// Cancels `cardSerial`, one of `userID`'s cards; returns how many certificates were revoked.
    public func cancelCard(_ desk: Desk, userID text: String, cardSerial: String, reason: CancelReason) async throws -> Int {
        guard let cancellation else { throw CardDeskError(.configuration, "This server cannot cancel cards (no certificate authority).") }
        let user = try await subject(text)
        let id = user.id
        try await require(desk, may: .cancelCard, for: user, about: "card:\(cardSerial.prefix(40))", refused: "cancel")
        guard let card = try await directory.cards(userID: id).first(where: { $0.serial == cardSerial }) else {
            throw CardDeskError(.unknownCard, "\(user.givenName) \(user.familyName) has no card \(cardSerial.prefix(40)).")
        }
        return try await cancel(card, of: user, desk: desk, cancellation: cancellation, reason: reason.revocation, details: "card cancelled permanently (\(reason.description)) by \(desk)")
    }

    /// Cancels `card` and revokes every good certificate on it with `reason`; how many were revoked.
    func cancel(_ card: CardRecord, of user: User, desk: Desk, cancellation: CardCancellation, reason: RevocationReason, details: String) async throws -> Int {
        // The card first: from here it signs in nowhere, even before its certificates are all revoked.
        if card.status != .cancelled {
            try await cancellation.registry.cancelCard(serial: card.serial, audit: AuditEvent(
                action: .raAction, actor: "user:\(desk.actor)", subject: "card:\(card.serial)", details: details, time: clock.now()
            ))
        }
        var revoked = 0
        for certificate in try await directory.certificates(userID: user.id) where certificate.cardSerial == card.serial && certificate.status == .good {
            do {
                _ = try await cancellation.authority.revoke(serial: certificate.serial, reason: reason, actor: "user:\(desk.actor)", current: certificate)
                revoked += 1
            } catch let error as CardDeskError where error.code == .alreadyRevoked {
                // Revoked meanwhile (another RA, or an earlier attempt): what was wanted.
            }
        }
        return revoked
    }
}

/// What cancelling cards needs beyond the directory: the CA that revokes, and the card registry.
public struct CardCancellation: Sendable {
    let authority: CertificateAuthority
    let registry: any CardRegistry

    public init(authority: CertificateAuthority, registry: any CardRegistry) {
        self.authority = authority
        self.registry = registry
    }
}
