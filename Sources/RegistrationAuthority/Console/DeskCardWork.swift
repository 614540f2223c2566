public import CardDeskAPI
public import CardDeskCore
import Foundation
import Smartcard

/// What an RA does with the holder's card in the second reader at their desk: renew its certificates (falling due, or
/// expired for the roles allowed), unlock it, and issue a blank card. The RA's session says who acts and in which role; `RAPolicy` decides
/// for the card's holder; the card itself takes part (it signs the renewal's challenge once the holder has typed the
/// passcode, and takes the new passcode from the holder at the workstation). Refusals are audited, with the reason.
extension RAConsole {
    /// Starts (or resumes) the renewal of `cardSerial`'s certificates for its holder; the agent then drives the
    /// renewal's steps with the token in the answer, as in self-renewal.
    public func renewCard(_ desk: Desk, cardSerial text: String, challenge: String, signature: [UInt8]) async throws -> RenewalView {
        let work = try requireCardWork()
        let card = try await work.renewal.requireCard(try Identifiers.cardSerial(text))
        let user = try await subject(card.userID.rawValue)
        let expired = try await work.renewal.inForce(card.serial).earliestExpiry <= clock.now()
        let action: RAAction = expired ? .renewExpired : .renewDue
        if case .refused(let why) = RAPolicy.decide(actor: desk.actor, role: desk.role, organisation: desk.organisation, action: action, subject: user) {
            throw try await refusal(desk, subject: "card:\(card.serial)", refused: "renew", note: why, reason: why)
        }
        let view = try await work.renewal.start(
            cardSerial: card.serial, challenge: challenge, signature: signature,
            by: .init(actor: "user:\(desk.actor)", desk: desk.description, mayRenewExpired: RAPolicy.allows(desk.role, .renewExpired))
        )
        try await directory.appendAudit(AuditEvent(
            action: .raAction, actor: "user:\(desk.actor)", subject: "card:\(card.serial)",
            details: "renewal \(view.id) of \(expired ? "expired" : "due") certificates for user:\(user.id) by \(desk)", time: clock.now()
        ))
        return view
    }

    /// Repairs `cardSerial` at the desk: new keys and certificates on the same card (`RenewalEngine.startRepair`).
    public func repairCard(_ desk: Desk, cardSerial text: String) async throws -> RenewalView {
        let work = try requireCardWork()
        let card = try await work.renewal.requireCard(try Identifiers.cardSerial(text))
        let user = try await subject(card.userID.rawValue)
        if case .refused(let why) = RAPolicy.decide(actor: desk.actor, role: desk.role, organisation: desk.organisation, action: .repair, subject: user) {
            throw try await refusal(desk, subject: "card:\(card.serial)", refused: "repair", note: why, reason: why)
        }
        let view = try await work.renewal.startRepair(
            cardSerial: card.serial, by: .init(actor: "user:\(desk.actor)", desk: desk.description, mayRenewExpired: RAPolicy.allows(desk.role, .renewExpired))
        )
        try await directory.appendAudit(AuditEvent(
            action: .raAction, actor: "user:\(desk.actor)", subject: "card:\(card.serial)",
            details: "repair \(view.id) (new keys and certificates) for user:\(user.id) by \(desk)", time: clock.now()
        ))
        return view
    }

    /// Clears `cardSerial` at the desk so that it can be issued again: the card is cancelled (it signs in nowhere as
    /// this card again) and every certificate on it revoked; the answer is what the agent needs to reset the card to
    /// its factory state (its management key and PUK, useless from now on). Run again after an interruption, it
    /// answers again.
    public func clearCard(_ desk: Desk, cardSerial text: String) async throws -> RADeskAPI.ClearRelease {
        let work = try requireCardWork()
        guard let cancellation else { throw CardDeskError(.configuration, "This server cannot clear cards (no certificate authority).") }
        let serial = try Identifiers.cardSerial(text)
        guard let card = try await work.renewal.store.card(serial: serial) else {
            throw CardDeskError(.unknownCard, "This card (\(serial)) is not known to CardDesk.")
        }
        let user = try await subject(card.userID.rawValue)
        if case .refused(let why) = RAPolicy.decide(actor: desk.actor, role: desk.role, organisation: desk.organisation, action: .clear, subject: user) {
            throw try await refusal(desk, subject: "card:\(card.serial)", refused: "clear", note: why, reason: why)
        }
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
        let user = try await subject(card.userID.rawValue)
        if case .refused(let why) = RAPolicy.decide(actor: desk.actor, role: desk.role, organisation: desk.organisation, action: .unlockCard, subject: user) {
            throw try await refusal(desk, subject: "card:\(card.serial)", refused: "unlock", note: why, reason: why)
        }
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
        if case .refused(let why) = RAPolicy.decide(actor: desk.actor, role: desk.role, organisation: desk.organisation, action: .issueCard, subject: user) {
            throw try await refusal(desk, subject: "user:\(user.id)", refused: "issue", note: why, reason: why)
        }
        return try await work.enrolment.issueToken(userID: user.id, keyAlgorithm: algorithm, validityDays: nil, actor: "user:\(desk.actor)").token
    }

    private func requireCardWork() throws -> DeskCardWork {
        guard let cardWork else { throw CardDeskError(.configuration, "This server cannot work on cards at the RA desk.") }
        return cardWork
    }
}

/// What the desk's card work needs beyond the directory: the renewal engine and the unlock service.
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
