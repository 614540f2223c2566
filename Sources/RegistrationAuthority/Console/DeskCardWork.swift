public import CardDeskAPI
public import CardDeskCore
import Foundation
import Smartcard

/// What an RA does with the holder's card in the second reader at their desk: renew its certificates (falling due, or
/// expired for the roles allowed), repair, unlock or clear it, and issue a blank card. The RA's session says who acts
/// and in which role; `RAPolicy` decides for the card's holder; the card itself takes part (it signs the renewal's challenge once the holder has typed the
/// passcode, and takes the new passcode from the holder at the workstation). Refusals are audited, with the reason.
extension RAConsole {
    /// Starts (or resumes) the renewal of `cardSerial`'s certificates for its holder; the agent then drives the
    /// renewal's steps with the token in the answer, as in self-renewal. `witness`: the card's management-key witness,
    /// answered with the renewal (`RenewalEngine.start`).
    public func renewCard(_ desk: Desk, cardSerial text: String, challenge: String, signature: [UInt8], witness: [UInt8]? = nil) async throws -> RenewalView {
        let work = try requireCardWork()
        let inForce = try await work.renewal.inForce(try Identifiers.cardSerial(text))
        let expired = inForce.earliestExpiry <= clock.now()
        let user = try await holder(of: inForce.card, desk, may: expired ? .renewExpired : .renewDue, refused: "renew")
        let view = try await work.renewal.start(
            cardSerial: inForce.card.serial, challenge: challenge, signature: signature, by: renewing(desk), encryptedWitness: witness
        )
        try await audit(desk, "renewal \(view.id) of \(expired ? "expired" : "due") certificates for user:\(user.id)", card: inForce.card)
        return view
    }

    /// Repairs `cardSerial` at the desk: new keys and certificates on the same card (`RenewalEngine.startRepair`).
    public func repairCard(_ desk: Desk, cardSerial text: String) async throws -> RenewalView {
        let work = try requireCardWork()
        let card = try await work.renewal.requireCard(try Identifiers.cardSerial(text))
        let user = try await holder(of: card, desk, may: .repair, refused: "repair")
        let view = try await work.renewal.startRepair(cardSerial: card.serial, by: renewing(desk))
        try await audit(desk, "repair \(view.id) (new keys and certificates) for user:\(user.id)", card: card)
        return view
    }

    /// Clears `cardSerial` at the desk so that it can be issued again: the card is cancelled (it signs in nowhere as
    /// this card again) and every certificate on it revoked; the answer is what the agent needs to reset the card to
    /// its factory state (its management key and PUK, useless from now on). Run again after an interruption (the card
    /// cancelled already), it answers again.
    public func clearCard(_ desk: Desk, cardSerial text: String) async throws -> RADeskAPI.ClearRelease {
        let work = try requireCardWork()
        guard let cancellation else { throw CardDeskError(.configuration, "This server cannot clear cards (no certificate authority).") }
        let serial = try Identifiers.cardSerial(text)
        guard let card = try await work.renewal.store.card(serial: serial) else {
            throw CardDeskError(.unknownCard, "This card (\(serial)) is not known to CardDesk.")
        }
        let user = try await holder(of: card, desk, may: .clear, refused: "clear")
        let key = try CardAdministration.managementKey(of: card, masterKey: work.renewal.masterKey)
        let release = RADeskAPI.ClearRelease(
            cardSerial: card.serial, managementKeyAlgorithm: key.algorithm.rawValue, managementKey: Data(key.bytes),
            puk: try CardAdministration.openPUK(card.pukSealed, serial: card.serial, masterKey: work.renewal.masterKey)
        )
        _ = try await cancel(card, of: user, desk: desk, cancellation: cancellation, reason: .cessationOfOperation, details: "card cleared by \(desk), to be issued again")
        return release
    }

    /// Releases `cardSerial`'s PUK to reset its passcode at the desk; `completeUnlock` reports the reset.
    public func unlockCard(_ desk: Desk, cardSerial text: String) async throws -> UnlockAPI.PUKRelease {
        let work = try requireCardWork()
        let card = try await work.renewal.requireCard(try Identifiers.cardSerial(text))
        _ = try await holder(of: card, desk, may: .unlockCard, refused: "unlock")
        return try await work.unlock.releaseForRA(card, actor: "user:\(desk.actor)", desk: desk.description)
    }

    /// The card was reset with the new passcode the holder typed, and its PUK changed.
    public func completeUnlock(_ desk: Desk, cardSerial: String, token: String) async throws {
        try await requireCardWork().unlock.completeForRA(cardSerial: cardSerial, token: token, actor: "user:\(desk.actor)", desk: desk.description)
    }

    /// A single-use token to enrol a new card for `userID` in the desk's second reader (the enrolment API does the
    /// rest, as for `carddesk card enrol`; the person types the new card's passcode at the workstation).
    public func issueCard(_ desk: Desk, userID text: String, keyAlgorithm: String) async throws -> String {
        let work = try requireCardWork()
        let user = try await subject(text)
        guard let algorithm = CardKeyAlgorithm(rawValue: keyAlgorithm) else {
            throw CardDeskError(.invalidInput, "The key type must be p256 or rsa2048.")
        }
        try await require(desk, may: .issueCard, for: user, about: "user:\(user.id)", refused: "issue")
        return try await work.enrolment.issueToken(userID: user.id, keyAlgorithm: algorithm, validityDays: nil, actor: "user:\(desk.actor)").token
    }

    /// The holder of `card`, whom the desk may do `action` for (refused and audited otherwise).
    private func holder(of card: CardRecord, _ desk: Desk, may action: RAAction, refused: String) async throws -> User {
        let user = try await subject(card.userID.rawValue)
        try await require(desk, may: action, for: user, about: "card:\(card.serial)", refused: refused)
        return user
    }

    /// The RA at `desk` renewing a card, as the renewal engine takes it.
    private func renewing(_ desk: Desk) -> RenewalEngine.RADesk {
        .init(actor: "user:\(desk.actor)", desk: desk.description, mayRenewExpired: RAPolicy.allows(desk.role, .renewExpired))
    }

    private func audit(_ desk: Desk, _ details: String, card: CardRecord) async throws {
        try await directory.appendAudit(AuditEvent(
            action: .raAction, actor: "user:\(desk.actor)", subject: "card:\(card.serial)", details: "\(details) by \(desk)", time: clock.now()
        ))
    }

    private func requireCardWork() throws -> DeskCardWork {
        guard let cardWork else { throw CardDeskError(.configuration, "This server cannot work on cards at the RA desk.") }
        return cardWork
    }
}

/// What the desk's card work needs beyond the directory: the renewal engine, the unlock service and card enrolment.
public struct DeskCardWork: Sendable {
    let renewal: RenewalEngine
    let unlock: UnlockService
    let enrolment: CardEnrolment

    public init(renewal: RenewalEngine, unlock: UnlockService, enrolment: CardEnrolment) {
        self.renewal = renewal
        self.unlock = unlock
        self.enrolment = enrolment
    }
}
