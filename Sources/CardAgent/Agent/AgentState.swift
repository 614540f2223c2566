import CardDeskAPI
import CardDeskCore
import Crypto
import Foundation
import Smartcard

/// One card in the reader, from insertion to removal. A card taken out and put back is a new insertion, so an answer
/// that arrives for the card that left is never taken for the card that is in now, even when it is the same card.
struct CardInsertion: Hashable, Sendable {
    let serial: String
    let number: Int
}

/// What the workstation agent knows, as a value: the card in the reader, the sign-in, the role, the expiry question,
/// and the renewal and unlock in progress. It does no I/O. Each event (a card inserted, a line typed, an answer from
/// the card or the server) is a mutating method that returns the effects the agent must carry out (say something,
/// read the card, call the server, cancel the renewal); requests that must be refused throw, having changed nothing.
/// A request that claims something (a sign-in, a role choice, a renewal, an unlock step) claims it in the same call
/// that checks it, so two requests at once cannot both pass the check.
struct AgentState: Sendable {
    typealias Phase = BridgeAPI.Status.Phase

    enum Effect: Hashable, Sendable {
        /// A line on the terminal (standard output).
        case say(String)
        /// The terminal hides typed characters (true) exactly while the agent waits for a passcode there.
        case hideInput(Bool)
        /// Read the card's passcode state, then report it with `passcodeState(_:for:)`.
        case readPasscodeState(CardInsertion)
        /// Check the passcode typed at the terminal and sign in (claimed already: `busy`).
        case signIn(passcode: String, CardInsertion)
        /// Choose a role typed at the terminal (claimed already: `busy`).
        case chooseRole(token: String, number: Int)
        /// End the session at the server.
        case logout(token: String, reason: String)
        /// Stop the renewal running for the card that left (it stops at its next step).
        case cancelRenewal
        /// Open the renewal page in the browser, with a fresh hand-over secret.
        case openRenewalPage
        /// A desktop notification (where there is a desktop).
        case notify(title: String, body: String)
        /// Change the card's PUK, released for an unlock that stopped before changing it.
        case rotatePUK(CardInsertion)
        /// Stop the RA desk's renewal of the card that left the second reader.
        case cancelSubjectRenewal
    }

    /// The page the expiry notification points to.
    let renewalURL: String

    private(set) var card: CardInsertion?
    private(set) var phase: Phase = .noCard
    /// A sign-in or role choice is in flight: terminal lines wait for it rather than start another.
    private(set) var busy = false
    /// The session's token and what the server said about it, once the card signed in.
    private(set) var token: String?
    private(set) var view: SessionView?
    /// The terminal asked "Renew them now? [Yes/No]" and waits for the answer.
    private(set) var askingExpiry = false
    private(set) var triesLeft: Int?
    /// How many tries the card allows; a passcode the card accepts restores them all.
    private var maximumTries: Int?
    private var insertions = 0
    private(set) var renewal = AgentRenewal()
    private(set) var unlock = AgentUnlock()
    private(set) var handover = HandoverSecrets()
    /// The card holder's card in the RA desk's second reader (`card` is the RA's own; an empty serial: a blank card),
    /// its renewal or repair by the RA, and the other work running on it.
    private(set) var subject: CardInsertion?
    private(set) var subjectRenewal = AgentRenewal()
    private(set) var subjectWork: SubjectWork?

    /// Work on the card in the second reader other than its renewal, one at a time.
    enum SubjectWork: String, Sendable {
        case unlocking = "being unlocked"
        case issuing = "being issued"
        case clearing = "being cleared"
    }

    /// The card in the second reader is blank: an RA may issue it.
    var subjectBlank: Bool { subject?.serial.isEmpty == true }

    init(renewalURL: String) {
        self.renewalURL = renewalURL
    }

    /// The one place the phase changes: the terminal's echo follows it.
    private mutating func enter(_ next: Phase) -> [Effect] {
        let waited = phase == .awaitingPasscode
        phase = next
        return waited == (next == .awaitingPasscode) ? [] : [.hideInput(next == .awaitingPasscode)]
    }

    /// Forgets the session (not the card).
    private mutating func endSession() {
        token = nil
        view = nil
        askingExpiry = false
        handover = HandoverSecrets()
    }

    // MARK: The reader

    mutating func inserted(serial: String) -> [Effect] {
        var effects: [Effect] = token.map { [.logout(token: $0, reason: "card removed")] } ?? []
        insertions += 1
        let card = CardInsertion(serial: serial, number: insertions)
        self.card = card
        endSession()
        unlock = AgentUnlock()
        triesLeft = nil
        maximumTries = nil
        effects += enter(.noCard)
        effects += [.say("Card \(serial) inserted."), .readPasscodeState(card)]
        return effects
    }

    /// The card left: the session ends at once, a renewal for it stops at its next step.
    mutating func removed() -> [Effect] {
        var effects: [Effect] = renewal.cardRemoved() ? [.cancelRenewal] : []
        effects += enter(.noCard)
        let current = token
        card = nil
        busy = false
        endSession()
        unlock = AgentUnlock()
        triesLeft = nil
        maximumTries = nil
        if let current {
            effects += [.logout(token: current, reason: "card removed"), .say("Card removed: you have been logged out.")]
        } else {
            effects.append(.say("Card removed."))
        }
        return effects
    }

    /// A blank card (never issued) in the reader: nobody can sign in with it.
    mutating func blankInserted() -> [Effect] {
        var effects: [Effect] = card == nil ? [] : removed()
        effects.append(.say("This smartcard is blank: it has not been issued yet. Ask your Registration Authority to issue it."))
        return effects
    }

    /// What the card said about its passcode, read for `insertion`.
    mutating func passcodeState(_ state: Result<PINState, CardDeskError>, for insertion: CardInsertion) -> [Effect] {
        guard card == insertion, token == nil else { return [] }
        switch state {
        case .failure(let error):
            return [.say(error.reason)]
        case .success(let state):
            triesLeft = state.pinTriesLeft
            maximumTries = state.pinMaximumTries
            if state.isLocked {
                return enter(.cardLocked) + [
                    .say("Your smartcard is locked after three wrong passcodes. Unlock it with self-service unlock (carddesk unlock) or ask your Registration Authority.")
                ]
            }
            return enter(.awaitingPasscode) + [.say("Passcode:")]
        }
    }

    /// The card accepted a passcode (`refused` nil; every try is back), or refused it with `triesLeft` left.
    mutating func passcodeChecked(refused: CardDeskError?, triesLeft: Int?, for insertion: CardInsertion) -> [Effect] {
        guard card == insertion else { return [] }
        guard let refused else {
            self.triesLeft = maximumTries ?? self.triesLeft
            return []
        }
        self.triesLeft = triesLeft
        return refused.code == .cardLocked || triesLeft == 0 ? enter(.cardLocked) : []
    }

    // MARK: The terminal

    /// A line typed at the terminal: the answer to whatever the agent last asked.
    mutating func line(_ text: String) -> [Effect] {
        let answer = text.trimmingCharacters(in: .whitespaces)
        guard !busy else { return [] }
        switch phase {
        case .awaitingPasscode:
            guard let card = try? beginSignIn() else { return [] }
            return [.signIn(passcode: answer, card)]
        case .awaitingRole:
            let count = view?.roles.count ?? 1
            guard let number = Int(answer), (1...count).contains(number), let token = try? beginRoleChoice() else {
                return [.say("Please type a number from 1 to \(count).")]
            }
            return [.chooseRole(token: token, number: number)]
        case .signedIn where askingExpiry:
            askingExpiry = false
            if answer.lowercased().hasPrefix("y") { return [.openRenewalPage] }
            return [.say("To renew later, copy this link into a supported browser: \(renewalURL)")]
        default:
            return []
        }
    }

    // MARK: Signing in and choosing a role (terminal and page)

    /// Claims the sign-in for the card in the reader.
    mutating func beginSignIn() throws(CardDeskError) -> CardInsertion {
        guard let card, phase == .awaitingPasscode, !busy else {
            throw CardDeskError(.invalidInput, phase == .noCard ? "Insert your smartcard first." : "The agent is not waiting for a passcode now.")
        }
        busy = true
        return card
    }

    /// The server opened `session` for `insertion`. False when that card has left meanwhile: the effects then end
    /// the session that nobody holds any more.
    mutating func signedIn(_ session: SessionView, token: String, for insertion: CardInsertion, fromTerminal: Bool, now: Date) -> (effects: [Effect], accepted: Bool) {
        busy = false
        guard card == insertion, phase == .awaitingPasscode else {
            return ([.logout(token: token, reason: "card removed")], false)
        }
        self.token = token
        view = session
        var effects: [Effect] = fromTerminal ? [] : [.say("Passcode accepted from the browser.")]
        if session.role == nil {
            effects += enter(.awaitingRole)
            effects.append(.say("Choose the role to work in:"))
            for (index, role) in session.roles.enumerated() { effects.append(.say("  \(index + 1). \(role)")) }
            effects.append(.say("Role number [1-\(session.roles.count)]:"))
            return (effects, true)
        }
        return (effects + working(session, fromTerminal: fromTerminal, now: now), true)
    }

    /// The sign-in for `insertion` failed.
    mutating func signInFailed(_ error: CardDeskError, for insertion: CardInsertion, fromTerminal: Bool) -> [Effect] {
        busy = false
        guard fromTerminal else { return [] }
        var effects: [Effect] = [.say(error.reason)]
        if card == insertion, error.code == .wrongPasscode || error.code == .cardLocked { effects.append(.readPasscodeState(insertion)) }
        return effects
    }

    /// Claims the role choice; the session's token.
    mutating func beginRoleChoice() throws(CardDeskError) -> String {
        guard phase == .awaitingRole, let token, !busy else { throw CardDeskError(.invalidInput, "The agent is not waiting for a role now.") }
        busy = true
        return token
    }

    /// The server put the session `token` in a role. False when that session has ended meanwhile.
    mutating func roleChosen(_ session: SessionView, token: String, fromTerminal: Bool, now: Date) -> (effects: [Effect], accepted: Bool) {
        busy = false
        guard self.token == token, phase == .awaitingRole else { return ([], false) }
        return (working(session, fromTerminal: fromTerminal, now: now), true)
    }

    mutating func roleChoiceFailed(_ error: CardDeskError, fromTerminal: Bool) -> [Effect] {
        busy = false
        return fromTerminal ? [.say(error.reason)] : []
    }

    /// Signed in and in a role: the expiry notification when renewal is open, and a PUK left to change.
    private mutating func working(_ session: SessionView, fromTerminal: Bool, now: Date) -> [Effect] {
        view = session
        var effects = enter(.signedIn)
        effects.append(.say("Signed in as \(session.name) (\(session.userID)) in role \(session.role ?? "")."))
        if session.renewal.pukRotationPending, let card { effects.append(.rotatePUK(card)) }
        guard session.renewal.renewalAvailable, let earliest = session.certificates.map(\.notAfter).min() else { return effects }
        let end = Date(timeIntervalSince1970: Double(earliest.millisecondsSince1970) / 1000)
        let text = "Your smartcard certificates expire on \(earliest.dateDescription) (\(Terminal.daysLeft(until: end, now: now)) days)."
        effects.append(.notify(title: "Your smartcard certificates expire soon", body: text + " Renew them at " + renewalURL))
        // Signed in from the page: the page shows the same notice; the terminal question is for terminal sign-in.
        if fromTerminal {
            askingExpiry = true
            effects.append(.say(text + " Renew them now? [Yes/No]"))
        }
        return effects
    }

    // MARK: The server's check-in

    /// The session to keep alive at the next check-in.
    var checkInToken: String? { phase == .signedIn || phase == .awaitingRole ? token : nil }

    /// The server says the session `token` has ended (logged out from the page, expired).
    mutating func sessionEnded(token ended: String, reason: String?) -> [Effect] {
        guard token == ended, let card else { return [] }
        endSession()
        return [
            .say("You have been logged out (\(reason ?? "session ended")). Insert your card and sign in again."),
            .readPasscodeState(card),
        ]
    }

    // MARK: What the page may do

    func status(version: String) -> BridgeAPI.Status {
        BridgeAPI.Status(
            version: version, phase: phase, cardSerial: card?.serial, triesLeft: triesLeft,
            roles: phase == .awaitingRole ? view?.roles ?? [] : []
        )
    }

    /// The token a page must present for anything beyond status and sign-in; nil when nobody is signed in.
    var bridgeToken: String? {
        guard phase == .signedIn, let token else { return nil }
        return BridgeToken.derive(sessionToken: token)
    }

    /// The session and card of a signed-in holder, or the refusal a page sees.
    func requireSignedIn() throws(CardDeskError) -> (token: String, card: CardInsertion, view: SessionView) {
        guard phase == .signedIn, let token, let card, let view else { throw CardDeskError(.authenticationFailed, "Sign in with your smartcard first.") }
        return (token, card, view)
    }

    /// The card in the reader, for what needs no sign-in (unlock).
    func requireCard() throws(CardDeskError) -> CardInsertion {
        guard let card else { throw CardDeskError(.cardRemoved, "Insert your smartcard first.") }
        return card
    }

    mutating func newHandoverSecret(now: Date) -> String {
        handover.issue(now: now)
    }

    mutating func consumeHandoverSecret(_ secret: String, now: Date) -> Bool {
        handover.consume(secret, now: now)
    }

    // MARK: Renewal from the page

    /// Claims the renewal for the signed-in card (its passcode is checked next).
    mutating func claimRenewal() throws(CardDeskError) -> CardInsertion {
        let signedIn = try requireSignedIn()
        try renewal.claim(profiles: signedIn.view.certificates.map(\.profile))
        return signedIn.card
    }

    /// The passcode for the claimed renewal was refused (or the card could not check it).
    mutating func renewalRefused() {
        renewal.abandon()
    }

    /// The passcode was right: the renewal runs, unless the card has left meanwhile.
    mutating func renewalStarts(for insertion: CardInsertion) throws(CardDeskError) -> [Effect] {
        guard card == insertion else {
            renewal.abandon()
            throw CardDeskError(.cardRemoved, "The smartcard was removed. Insert it and try again.")
        }
        renewal.started()
        return [.say("Renewal started from the browser.")]
    }

    mutating func renewalProgress(_ profile: CertificateProfileKind, _ stage: RenewalClient.Stage) {
        renewal.update(profile, stage)
    }

    mutating func renewalFinished(_ error: (any Error)?) -> [Effect] {
        guard let reason = renewal.finish(error) else { return [.say("Success: certificate renewed for smartcard")] }
        return [.say("The renewal stopped: \(WorkstationAgent.describe(reason))")]
    }

    // MARK: Unlock from the page (no sign-in: the card is locked or its passcode forgotten)

    mutating func unlockOptionsShown(for insertion: CardInsertion) {
        guard card == insertion else { return }
        unlock.began(insertion)
    }

    mutating func claimUnlockCode() throws(CardDeskError) -> CardInsertion {
        let card = try requireCard()
        try unlock.claimCode(card)
        return card
    }

    mutating func unlockCodeSent(_ sent: UnlockAPI.CodeSent?, channel: ContactChannel, for insertion: CardInsertion) -> [Effect] {
        guard card == insertion else { return [] }
        unlock.codeSent(sent?.unlockID, for: insertion)
        guard let sent else { return [] }
        return [.say("An unlock code was sent by \(channel.spoken) to \(sent.sentTo).")]
    }

    mutating func claimUnlockVerification() throws(CardDeskError) -> (CardInsertion, unlockID: String) {
        let card = try requireCard()
        return (card, try unlock.claimVerification(card))
    }

    mutating func unlockCodeVerified(token: String?, for insertion: CardInsertion) {
        guard card == insertion else { return }
        unlock.verified(token: token, for: insertion)
    }

    mutating func claimUnlockReset() throws(CardDeskError) -> (CardInsertion, unlockID: String, token: String) {
        let card = try requireCard()
        let (id, token) = try unlock.claimReset(card)
        return (card, id, token)
    }

    /// The reset ended; `unlocked` says whether the card took the new passcode.
    mutating func unlockResetEnded(unlocked: Bool, for insertion: CardInsertion) -> [Effect] {
        guard card == insertion else { return [] }
        unlock.resetEnded(unlocked: unlocked)
        guard unlocked else { return [] }
        var effects: [Effect] = [.say("Your smartcard is unlocked: sign in with your new passcode.")]
        if phase == .cardLocked || phase == .awaitingPasscode, token == nil { effects.append(.readPasscodeState(insertion)) }
        return effects
    }

    // MARK: The RA desk's second reader (the card holder's card)

    mutating func subjectInserted(serial: String) -> [Effect] {
        var effects: [Effect] = subjectRenewal.cardRemoved() ? [.cancelSubjectRenewal] : []
        insertions += 1
        subject = CardInsertion(serial: serial, number: insertions)
        subjectWork = nil
        effects.append(.say(serial.isEmpty ? "A blank card is in the second reader." : "Card \(serial) inserted in the second reader."))
        return effects
    }

    /// The holder's card left the second reader: its renewal stops at its next step (and resumes when it is back).
    mutating func subjectRemoved() -> [Effect] {
        var effects: [Effect] = subjectRenewal.cardRemoved() ? [.cancelSubjectRenewal] : []
        subject = nil
        subjectWork = nil
        effects.append(.say("Card removed from the second reader."))
        return effects
    }

    /// The RA's session and the holder's card, for the desk's card work: the RA signed in with their own card, and
    /// the holder's card is in the second reader.
    func requireDesk() throws(CardDeskError) -> (token: String, subject: CardInsertion) {
        let signedIn = try requireSignedIn()
        guard let subject else { throw CardDeskError(.cardRemoved, "Put the card holder's smartcard in the second reader.") }
        return (signedIn.token, subject)
    }

    /// The desk, with a card in the second reader that is blank (`blank`) or issued, and nothing else running on it.
    private func requireIdleSubject(blank: Bool) throws(CardDeskError) -> (token: String, subject: CardInsertion) {
        let desk = try requireDesk()
        if let subjectWork { throw CardDeskError(.renewalConflict, "The card in the second reader is \(subjectWork.rawValue).") }
        guard subjectBlank == blank else {
            throw blank
                ? CardDeskError(.invalidInput, "The card in the second reader has been issued already (\(desk.subject.serial)). Put a blank card in to issue a new one.")
                : CardDeskError(.unknownCard, "The card in the second reader is blank: issue it first.")
        }
        return desk
    }

    /// Claims `work` on the card in the second reader (an unlock, clearing: an issued card; issuing: a blank one).
    mutating func claimSubject(_ work: SubjectWork) throws(CardDeskError) -> (token: String, subject: CardInsertion) {
        let desk = try requireIdleSubject(blank: work == .issuing)
        guard subjectRenewal.run == .idle else {
            throw CardDeskError(.renewalConflict, "The card in the second reader is busy: wait for what it is doing to finish.")
        }
        subjectWork = work
        return desk
    }

    /// The work claimed for `insertion` ended (failed, or succeeded with nothing to change in the state).
    mutating func subjectWorkEnded(for insertion: CardInsertion, saying outcome: String? = nil) -> [Effect] {
        guard subject == insertion else { return [] }
        subjectWork = nil
        return outcome.map { [.say($0)] } ?? []
    }

    /// The work on `insertion` made it another card (issued: `serial`; cleared: blank, ""), said with `outcome`: a new
    /// insertion, so nothing started for the card before carries over.
    mutating func subjectBecame(_ serial: String, for insertion: CardInsertion, saying outcome: String) -> [Effect] {
        guard subject == insertion else { return [] }
        var effects = subjectInserted(serial: serial)
        effects.removeLast()
        return effects + [.say(outcome)]
    }

    /// Claims the renewal (or repair) of the holder's card (the holder's passcode is checked next).
    mutating func claimSubjectRenewal() throws(CardDeskError) -> (token: String, subject: CardInsertion) {
        let desk = try requireIdleSubject(blank: false)
        try subjectRenewal.claim(profiles: [])
        return desk
    }

    mutating func subjectRenewalRefused() {
        subjectRenewal.abandon()
    }

    mutating func subjectRenewalStarts(for insertion: CardInsertion) throws(CardDeskError) -> [Effect] {
        guard subject == insertion else {
            subjectRenewal.abandon()
            throw CardDeskError(.cardRemoved, "The card was taken out of the second reader. Put it back and try again.")
        }
        subjectRenewal.started()
        return [.say("Renewing the certificates of card \(insertion.serial) (second reader) for its holder.")]
    }

    mutating func subjectRenewalProgress(_ profile: CertificateProfileKind, _ stage: RenewalClient.Stage) {
        subjectRenewal.update(profile, stage)
    }

    mutating func subjectRenewalFinished(_ error: (any Error)?, serial: String) -> [Effect] {
        guard let reason = subjectRenewal.finish(error) else { return [.say("Success: certificates renewed for smartcard \(serial).")] }
        return [.say("The renewal of card \(serial) stopped: \(WorkstationAgent.describe(reason))")]
    }
}

/// Single-use secrets with which a page joins the agent's session; only their hashes are kept, each for ten minutes.
struct HandoverSecrets: Sendable {
    static let lifetime: TimeInterval = 600
    private var issued: [String: Date] = [:]

    mutating func issue(now: Date) -> String {
        issued = issued.filter { $0.value > now }
        let secret = Hex.string((0..<32).map { _ in UInt8.random(in: 0...255) }, lowercase: true)
        issued[Self.hash(secret)] = now.addingTimeInterval(Self.lifetime)
        return secret
    }

    mutating func consume(_ secret: String, now: Date) -> Bool {
        guard let expiry = issued.removeValue(forKey: Self.hash(secret)) else { return false }
        return expiry > now
    }

    private static func hash(_ text: String) -> String {
        Hex.string(SHA256.hash(data: Array(text.utf8)), lowercase: true)
    }
}
