@testable import CardAgent
import CardDeskAPI
import CardDeskCore
import Foundation
import Smartcard
import Testing

/// The agent's state as a value: events in, effects out, no card and no server.
@Suite("Agent state")
struct AgentStateTests {
    static let url = "https://carddesk.example/?operation=selfRenewSmartcard"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let unlocked = PINState(pinTriesLeft: 3, pinMaximumTries: 3, pukTriesLeft: 3, pinVerified: false)

    static func session(roles: [String] = ["R8000@RBQ"], role: String? = "R8000@RBQ", expiringInDays days: Int64 = 400, available: Bool = false, pukPending: Bool = false) -> SessionView {
        let end = Timestamp(millisecondsSince1970: Int64(now.timeIntervalSince1970 * 1000)).adding(seconds: days * 86_400)
        return SessionView(
            id: "s1", token: nil, userID: "555254600106", name: "Jane Doe", organisation: "RBQ", roles: roles, role: role,
            certificates: [.init(profile: .authentication, serial: "01", notAfter: end), .init(profile: .signing, serial: "02", notAfter: end)],
            renewal: CardRenewalStatus(cardSerial: "CD01", renewalAvailable: available, opensOn: nil, message: "", renewalInProgress: false, pukRotationPending: pukPending)
        )
    }

    /// A card inserted and waiting for its passcode.
    static func awaitingPasscode() -> (AgentState, CardInsertion) {
        var state = AgentState(renewalURL: url)
        let effects = state.inserted(serial: "CD01")
        guard case .readPasscodeState(let card) = effects.last else { fatalError("the card is read first") }
        _ = state.passcodeState(.success(unlocked), for: card)
        return (state, card)
    }

    /// Signed in from the page with one role.
    static func signedIn(_ view: SessionView = session()) throws -> (AgentState, CardInsertion) {
        var (state, card) = awaitingPasscode()
        #expect(try state.beginSignIn() == card)
        #expect(state.signedIn(view, token: "t1", for: card, fromTerminal: false, now: now).accepted)
        return (state, card)
    }

    @Test("A card arrives: the agent reads its passcode state, then asks for the passcode with the terminal's echo off")
    func insertion() {
        var state = AgentState(renewalURL: Self.url)
        let effects = state.inserted(serial: "CD01")
        let card = CardInsertion(serial: "CD01", number: 1)
        #expect(effects == [.say("Card CD01 inserted."), .readPasscodeState(card)])
        #expect(state.status(version: "v").phase == .noCard)
        #expect(state.passcodeState(.success(Self.unlocked), for: card) == [.hideInput(true), .say("Passcode:")])
        #expect(state.status(version: "v").phase == .awaitingPasscode)
        #expect(state.status(version: "v").triesLeft == 3)
    }

    @Test("A locked card is told so and never asked for a passcode")
    func lockedCard() {
        var state = AgentState(renewalURL: Self.url)
        _ = state.inserted(serial: "CD01")
        let locked = PINState(pinTriesLeft: 0, pinMaximumTries: 3, pukTriesLeft: 3, pinVerified: false)
        let effects = state.passcodeState(.success(locked), for: CardInsertion(serial: "CD01", number: 1))
        #expect(state.phase == .cardLocked)
        #expect(!effects.contains(.hideInput(true)))
        #expect(effects.contains { if case .say(let text) = $0 { text.contains("locked") } else { false } })
        #expect(throws: CardDeskError.self) { try state.beginSignIn() }
    }

    @Test("An answer about a card that has left (even the same card, put back) changes nothing")
    func staleAnswers() throws {
        var state = AgentState(renewalURL: Self.url)
        _ = state.inserted(serial: "CD01")
        let first = CardInsertion(serial: "CD01", number: 1)
        _ = state.removed()
        _ = state.inserted(serial: "CD01")
        #expect(state.passcodeState(.success(Self.unlocked), for: first).isEmpty)
        #expect(state.phase == .noCard)
        // Signed in for the first insertion while it was being pulled: the session is ended, not adopted.
        var (signingIn, card) = Self.awaitingPasscode()
        _ = try signingIn.beginSignIn()
        _ = signingIn.removed()
        _ = signingIn.inserted(serial: "CD01")
        let outcome = signingIn.signedIn(Self.session(), token: "late", for: card, fromTerminal: false, now: Self.now)
        #expect(!outcome.accepted)
        #expect(outcome.effects == [.logout(token: "late", reason: "card removed")])
        #expect(signingIn.token == nil)
    }

    @Test("A passcode typed at the terminal claims the sign-in: more lines, or the page, cannot start another")
    func oneSignInAtATime() throws {
        var (state, card) = Self.awaitingPasscode()
        #expect(state.line(" 123456 ") == [.signIn(passcode: "123456", card)])
        #expect(state.line("654321").isEmpty)
        let refused = #expect(throws: CardDeskError.self) { try state.beginSignIn() }
        #expect(refused?.reason == "The agent is not waiting for a passcode now.")
        // A wrong passcode: said, and the passcode state read again (which asks again).
        let wrong = CardDeskError(.wrongPasscode, "Wrong passcode: 2 tries left.")
        #expect(state.passcodeChecked(refused: wrong, triesLeft: 2, for: card).isEmpty)
        #expect(state.signInFailed(wrong, for: card, fromTerminal: true) == [.say("Wrong passcode: 2 tries left."), .readPasscodeState(card)])
        #expect(state.status(version: "v").triesLeft == 2)
        #expect(state.line("123456") == [.signIn(passcode: "123456", card)])
        // Right this time: every try is back.
        #expect(state.passcodeChecked(refused: nil, triesLeft: nil, for: card).isEmpty)
        #expect(state.status(version: "v").triesLeft == 3)
    }

    @Test("The third wrong passcode locks the card: the terminal's echo comes back")
    func lockingPasscode() throws {
        var (state, card) = Self.awaitingPasscode()
        _ = state.line("000000")
        let locked = CardDeskError(.cardLocked, "Your smartcard is locked.")
        #expect(state.passcodeChecked(refused: locked, triesLeft: 0, for: card) == [.hideInput(false)])
        #expect(state.phase == .cardLocked)
    }

    @Test("Several roles: the holder picks one by number; a wrong number is explained")
    func roles() throws {
        var (state, card) = Self.awaitingPasscode()
        _ = state.line("123456")
        let view = Self.session(roles: ["R8000@RBQ", "R8003@RBQ"], role: nil)
        let outcome = state.signedIn(view, token: "t1", for: card, fromTerminal: true, now: Self.now)
        #expect(outcome.accepted)
        #expect(outcome.effects == [
            .hideInput(false), .say("Choose the role to work in:"), .say("  1. R8000@RBQ"), .say("  2. R8003@RBQ"), .say("Role number [1-2]:"),
        ])
        #expect(state.status(version: "v").roles == ["R8000@RBQ", "R8003@RBQ"])
        #expect(state.bridgeToken == nil, "no page may act before a role is chosen")
        #expect(state.line("3") == [.say("Please type a number from 1 to 2.")])
        #expect(state.line("two") == [.say("Please type a number from 1 to 2.")])
        #expect(state.line("2") == [.chooseRole(token: "t1", number: 2)])
        #expect(throws: CardDeskError.self) { try state.beginRoleChoice() }
        let chosen = state.roleChosen(Self.session(roles: ["R8000@RBQ", "R8003@RBQ"], role: "R8003@RBQ"), token: "t1", fromTerminal: true, now: Self.now)
        #expect(chosen.accepted)
        #expect(chosen.effects == [.say("Signed in as Jane Doe (555254600106) in role R8003@RBQ.")])
        #expect(state.bridgeToken == BridgeToken.derive(sessionToken: "t1"))
    }

    @Test("Renewal due: a notification, and at the terminal the question; Yes opens the page, No gives the link")
    func expiryQuestion() throws {
        var (state, card) = Self.awaitingPasscode()
        _ = state.line("123456")
        let view = Self.session(expiringInDays: 30, available: true)
        let effects = state.signedIn(view, token: "t1", for: card, fromTerminal: true, now: Self.now).effects
        #expect(effects.contains { if case .notify = $0 { true } else { false } })
        #expect(effects.last == .say("Your smartcard certificates expire on \(view.certificates[0].notAfter.dateDescription) (30 days). Renew them now? [Yes/No]"))
        #expect(state.line("yes") == [.openRenewalPage])
        #expect(state.line("yes").isEmpty, "asked once")

        var (other, otherCard) = Self.awaitingPasscode()
        _ = other.line("123456")
        _ = other.signedIn(view, token: "t2", for: otherCard, fromTerminal: true, now: Self.now)
        #expect(other.line("No") == [.say("To renew later, copy this link into a supported browser: \(Self.url)")])

        // From the page: the page shows the notice itself; the terminal asks nothing.
        var (page, pageCard) = Self.awaitingPasscode()
        _ = try page.beginSignIn()
        let fromPage = page.signedIn(view, token: "t3", for: pageCard, fromTerminal: false, now: Self.now).effects
        #expect(!fromPage.contains { if case .say(let text) = $0 { text.hasSuffix("[Yes/No]") } else { false } })
        #expect(page.line("yes").isEmpty)
    }

    @Test("A PUK released for an unlock that stopped is changed at sign-in")
    func pendingPUK() throws {
        var (state, card) = Self.awaitingPasscode()
        _ = try state.beginSignIn()
        let effects = state.signedIn(Self.session(pukPending: true), token: "t1", for: card, fromTerminal: false, now: Self.now).effects
        #expect(effects.contains(.rotatePUK(card)))
    }

    @Test("Card removed: logged out at the server, the renewal running for it cancelled, and it says why it stopped")
    func removalDuringRenewal() throws {
        var (state, card) = try Self.signedIn()
        #expect(try state.claimRenewal() == card)
        #expect(try state.renewalStarts(for: card) == [.say("Renewal started from the browser.")])
        state.renewalProgress(.signing, .generatingKey)
        #expect(state.renewal.snapshot.items.first { $0.profile == .signing }?.stage == "Generating key")
        let effects = state.removed()
        #expect(effects == [.cancelRenewal, .logout(token: "t1", reason: "card removed"), .say("Card removed: you have been logged out.")])
        // The task ends with whatever error the interruption surfaced as: the page is told the card was removed.
        _ = state.renewalFinished(CancellationError())
        #expect(state.renewal.snapshot.state == .failed)
        #expect(state.renewal.snapshot.errorCode == CardDeskError.Code.cardRemoved.name)
        #expect(state.renewal.run == .idle)
        #expect(state.bridgeToken == nil)
    }

    @Test("One renewal at a time; a refused passcode releases the claim; a card pulled during the passcode check stops it")
    func renewalClaims() throws {
        var (state, card) = try Self.signedIn()
        _ = try state.claimRenewal()
        let second = #expect(throws: CardDeskError.self) { try state.claimRenewal() }
        #expect(second?.code == .renewalConflict)
        #expect(state.renewal.snapshot.state == .running)
        state.renewalRefused()
        #expect(state.renewal.snapshot.state == .idle)
        _ = try state.claimRenewal()
        #expect(state.removed().first != .cancelRenewal, "nothing runs yet to cancel")
        let late = #expect(throws: CardDeskError.self) { try state.renewalStarts(for: card) }
        #expect(late?.code == .cardRemoved)
        #expect(state.renewal.run == .idle)
        // Finished: succeeded, every item done, and a new renewal may be claimed.
        var (done, doneCard) = try Self.signedIn()
        _ = try done.claimRenewal()
        _ = try done.renewalStarts(for: doneCard)
        #expect(done.renewalFinished(nil) == [.say("Success: certificate renewed for smartcard")])
        #expect(done.renewal.snapshot.state == .succeeded)
        #expect(done.renewal.snapshot.items.allSatisfy { $0.stage == "Done" })
        #expect(try done.claimRenewal() == doneCard, "a new renewal may start")
    }

    @Test("Nothing for the page until signed in: renewal, hand-over, passcode change are refused")
    func signedInOnly() {
        var (state, _) = Self.awaitingPasscode()
        #expect(throws: CardDeskError.self) { try state.claimRenewal() }
        #expect(throws: CardDeskError.self) { try state.requireSignedIn() }
        #expect(state.bridgeToken == nil)
    }

    @Test("The server ended the session: logged out and asked again; an old session's end is ignored")
    func sessionEndedElsewhere() throws {
        var (state, card) = try Self.signedIn()
        #expect(state.checkInToken == "t1")
        #expect(state.sessionEnded(token: "old", reason: "logged out").isEmpty)
        #expect(state.sessionEnded(token: "t1", reason: "logged out from the page") == [
            .say("You have been logged out (logged out from the page). Insert your card and sign in again."), .readPasscodeState(card),
        ])
        #expect(state.checkInToken == nil)
        #expect(state.passcodeState(.success(Self.unlocked), for: card) == [.hideInput(true), .say("Passcode:")])
    }

    @Test("Hand-over secrets are single-use, expire after ten minutes, and go with the session")
    func handoverSecrets() throws {
        var (state, card) = try Self.signedIn()
        let secret = state.newHandoverSecret(now: Self.now)
        let first = state.consumeHandoverSecret(secret, now: Self.now)
        let again = state.consumeHandoverSecret(secret, now: Self.now)
        #expect(first && !again, "used once")
        let old = state.newHandoverSecret(now: Self.now)
        let late = state.consumeHandoverSecret(old, now: Self.now.addingTimeInterval(601))
        #expect(!late, "expired")
        let kept = state.newHandoverSecret(now: Self.now)
        _ = state.sessionEnded(token: "t1", reason: nil)
        _ = state.passcodeState(.success(Self.unlocked), for: card)
        _ = try state.beginSignIn()
        _ = state.signedIn(Self.session(), token: "t2", for: card, fromTerminal: false, now: Self.now)
        let joined = state.consumeHandoverSecret(kept, now: Self.now)
        #expect(!joined, "a secret of an ended session joins nothing")
    }

    @Test("Unlock steps in order, each claimed: a second reset at once is refused, a failed reset may be run again")
    func unlockSteps() throws {
        var state = AgentState(renewalURL: Self.url)
        #expect(throws: CardDeskError.self) { try state.claimUnlockCode() }
        _ = state.inserted(serial: "CD01")
        let card = try state.requireCard()
        let locked = PINState(pinTriesLeft: 0, pinMaximumTries: 3, pukTriesLeft: 3, pinVerified: false)
        _ = state.passcodeState(.success(locked), for: card)
        state.unlockOptionsShown(for: card)
        let early = #expect(throws: CardDeskError.self) { try state.claimUnlockVerification() }
        #expect(early?.reason == "Ask for a code first.")
        _ = try state.claimUnlockCode()
        #expect(throws: CardDeskError.self) { try state.claimUnlockCode() }
        let sent = UnlockAPI.CodeSent(unlockID: "u1", channel: .sms, sentTo: "07•••••••12", expiresInSeconds: 600)
        #expect(state.unlockCodeSent(sent, channel: .sms, for: card) == [.say("An unlock code was sent by text message to 07•••••••12.")])
        #expect(throws: CardDeskError.self) { try state.claimUnlockReset() }
        let (_, id) = try state.claimUnlockVerification()
        #expect(id == "u1")
        state.unlockCodeVerified(token: nil, for: card)
        _ = try state.claimUnlockVerification()
        state.unlockCodeVerified(token: "v1", for: card)
        let (_, resetID, token) = try state.claimUnlockReset()
        #expect(resetID == "u1" && token == "v1")
        let twice = #expect(throws: CardDeskError.self) { try state.claimUnlockReset() }
        #expect(twice?.code == .stepInProgress)
        #expect(state.unlockResetEnded(unlocked: false, for: card).isEmpty)
        _ = try state.claimUnlockReset()
        #expect(state.unlockResetEnded(unlocked: true, for: card) == [
            .say("Your smartcard is unlocked: sign in with your new passcode."), .readPasscodeState(card),
        ])
        #expect(throws: CardDeskError.self) { try state.claimUnlockReset() }
    }

    @Test("Removing the card forgets the unlock in progress")
    func removalForgetsUnlock() throws {
        var state = AgentState(renewalURL: Self.url)
        _ = state.inserted(serial: "CD01")
        let card = try state.requireCard()
        _ = try state.claimUnlockCode()
        _ = state.unlockCodeSent(UnlockAPI.CodeSent(unlockID: "u1", channel: .email, sentTo: "j•••@nhs.net", expiresInSeconds: 600), channel: .email, for: card)
        _ = state.removed()
        _ = state.inserted(serial: "CD01")
        #expect(throws: CardDeskError.self) { try state.claimUnlockVerification() }
    }

    @Test("The RA desk's second reader: work needs the RA signed in and a card there; one piece of work at a time; a blank card is only issued, an issued one never issued again")
    func secondReader() throws {
        var state = AgentState(renewalURL: Self.url)
        _ = state.subjectInserted(serial: "CD02")
        #expect(throws: CardDeskError.self) { try state.claimSubjectRenewal() }
        (state, _) = try Self.signedIn()
        let empty = #expect(throws: CardDeskError.self) { try state.claimSubject(.unlocking) }
        #expect(empty?.reason == "Put the card holder's smartcard in the second reader.")

        #expect(state.subjectInserted(serial: "CD02") == [.say("Card CD02 inserted in the second reader.")])
        let (token, subject) = try state.claimSubjectRenewal()
        #expect(token == "t1" && subject.serial == "CD02")
        // While it is claimed, nothing else starts on that card.
        #expect(throws: CardDeskError.self) { try state.claimSubjectRenewal() }
        #expect(throws: CardDeskError.self) { try state.claimSubject(.unlocking) }
        #expect(throws: CardDeskError.self) { try state.claimSubject(.clearing) }
        #expect(throws: CardDeskError.self) { try state.claimSubject(.issuing) }
        _ = try state.subjectRenewalStarts(for: subject)
        // The card leaves: its renewal stops at its next step and says why.
        #expect(state.subjectRemoved() == [.cancelSubjectRenewal, .say("Card removed from the second reader.")])
        let stopped = state.subjectRenewalFinished(CancellationError(), serial: "CD02")
        #expect(stopped == [.say("The renewal of card CD02 stopped: The smartcard was removed: the renewal stopped. Insert it and renew again to finish.")])

        // A blank card: only issuing it; once issued, it is the new card.
        _ = state.subjectInserted(serial: "")
        #expect(throws: CardDeskError.self) { try state.claimSubjectRenewal() }
        #expect(throws: CardDeskError.self) { try state.claimSubject(.unlocking) }
        let (_, blank) = try state.claimSubject(.issuing)
        #expect(throws: CardDeskError.self) { try state.claimSubject(.issuing) }
        #expect(state.subjectBecame("CD03", for: blank, saying: "Card CD03 issued in the second reader.") == [.say("Card CD03 issued in the second reader.")])
        let again = #expect(throws: CardDeskError.self) { try state.claimSubject(.issuing) }
        #expect(again?.reason.contains("has been issued already (CD03)") == true)
        #expect(try state.claimSubject(.unlocking).subject.serial == "CD03")
    }
}
