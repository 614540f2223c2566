import CardAgent
import CardDeskAPI
import CardDeskTestSupport
import CardDeskCore
import CardDeskServerKit
import CardDeskStore
import Foundation
import Logging
import Messaging
import RegistrationAuthority
import Smartcard
import Synchronization
import Testing
import VirtualSmartcard

/// What the outbox hands to the transport: the tests read the code where the holder would.
final class Mailbox: MessageSender {
    private let messages = Mutex<[(to: String, subject: String, body: String)]>([])
    let failing = Mutex(false)

    func send(to recipient: String, subject: String, body: String) async throws {
        if failing.withLock({ $0 }) { throw CardDeskError(.serverUnreachable, "relay down") }
        messages.withLock { $0.append((recipient, subject, body)) }
    }

    var all: [(to: String, subject: String, body: String)] { messages.withLock { $0 } }

    func lastCode() throws -> String {
        let body = try #require(all.last?.body)
        return String(try #require(body.firstMatch(of: /\b(\d{6})\b/)?.1))
    }
}

struct UnlockFixture {
    let base: RenewalFixture
    let mailbox = Mailbox()
    let worker: OutboxWorker
    var unlock: UnlockService { base.instance.unlock }

    init(_ base: RenewalFixture) {
        self.base = base
        worker = base.instance.outboxWorker(senders: MessageSenders(email: mailbox, sms: mailbox), logger: Logger(label: "test"))
    }

    /// A card locked by three wrong passcodes, its holder with a confirmed email and mobile.
    func lockedCard(_ name: String, validityDays: Int = 30) async throws -> PIVCardSession {
        _ = try await unlock.setContacts(userID: base.user, email: "jane.doe@nhs.net", mobile: "07700 900123", actor: "test")
        let card = try await base.issueCard(name, validityDays: validityDays)
        for _ in 0..<3 { try? await card.verifyPIN("000000") }
        #expect(try await card.pinState().isLocked)
        return card
    }

    func send(_ card: PIVCardSession, _ channel: ContactChannel = .email) async throws -> UnlockAPI.CodeSent {
        let sent = try await unlock.requestCode(cardSerial: try await card.serial(), channel: channel)
        #expect(try await worker.sendDue() == 1)
        return sent
    }

    /// Registers an address as the page does: the card (passcode verified) signs the change over a fresh challenge.
    func register(_ card: PIVCardSession, _ channel: ContactChannel, _ address: String) async throws -> UnlockAPI.CodeSent {
        let challenge = try await unlock.contactChallenge()
        let serial = try await card.serial()
        let signature = try await card.sign(
            ContactChangeMessage.make(challenge: challenge, cardSerial: serial, channel: channel, address: address), with: .authentication
        )
        return try await unlock.registerContact(
            userID: base.user, cardSerial: serial, channel: channel, address: address, challenge: challenge, signature: signature.rawRepresentation
        )
    }

    func audit(_ action: String) async throws -> [String] {
        try await base.audit(AuditEvent.Action(rawValue: action))
    }
}

@Suite("Self-service unlock")
struct UnlockTests {
    @Test("Locked card: code by email, then a new passcode set on the card with the server's authorisation; it signs in and renews")
    func unlockJourney() async throws {
        try await RenewalFixture.with { base in
            let fixture = UnlockFixture(base)
            let card = try await fixture.lockedCard("locked")
            try await LiveServer.with(base.instance) { server in
            let client = UnlockClient(server: server, card: card)
            let offer = try await client.options()
            #expect(offer.contacts == [.init(channel: .email, masked: "j•••••••@nhs.net"), .init(channel: .sms, masked: "••••••••123")])
            let sent = try await fixture.send(card)
            #expect(fixture.mailbox.all.last?.to == "jane.doe@nhs.net")
            let verified = try await client.verify(unlockID: sent.unlockID, code: try fixture.mailbox.lastCode())
            // A trivial passcode is refused before anything touches the card.
            for (new, again) in [("111111", "111111"), ("123456", "123456"), ("876543", "876543"), ("13579", "13579"), ("246802", "246803")] {
                let weak = await #expect(throws: CardDeskError.self) { try await client.reset(unlockID: sent.unlockID, token: verified.token, passcode: new, repeated: again) }
                #expect(weak?.code == .weakPasscode)
            }
            #expect(try await card.pinState().isLocked)
            try await client.reset(unlockID: sent.unlockID, token: verified.token, passcode: "975310", repeated: "975310")
            #expect(try await card.pinState().pinTriesLeft == 3)
            try await card.verifyPIN("975310")
            // The token is spent: the same unlock cannot reset the card again.
            await #expect(throws: CardDeskError.self) { try await client.reset(unlockID: sent.unlockID, token: verified.token, passcode: "864209", repeated: "864209") }
            _ = try await LoginTests.signIn(base, card)
            try await RenewalClient(server: server, card: card).renew(passcode: "975310") { _, _ in }
            #expect(try await fixture.audit("card.unlock").contains { $0.contains("passcode reset on the card") })
            #expect(try await fixture.audit("card.unlock").contains { $0.contains("PUK rotated on the card") })
            #expect(try await base.instance.store.card(serial: try await card.serial())?.pukRotationPending == false)
            }
        }
    }

    @Test("An unlock stopped after the reset: run again it finishes, whether or not the card already has its new PUK; at the next contact a renewal rotates it")
    func interruptedUnlock() async throws {
        try await RenewalFixture.with { base in
            let fixture = UnlockFixture(base)
            try await LiveServer.with(base.instance) { server in
                for stoppedAfterPUKChange in [false, true] {
                    let card = try await fixture.lockedCard("stopped-\(stoppedAfterPUKChange)")
                    let serial = try await card.serial()
                    let client = UnlockClient(server: server, card: card)
                    let sent = try await fixture.send(card)
                    let verified = try await client.verify(unlockID: sent.unlockID, code: try fixture.mailbox.lastCode())
                    // The first run stops after the reset (and, the second time, after the PUK change too).
                    let release = try await server.releasePUK(unlockID: sent.unlockID, token: verified.token)
                    try await card.unblockPIN(puk: release.puk, newPIN: "975310")
                    if stoppedAfterPUKChange { try await card.changePUK(current: release.puk, new: release.nextPUK) }
                    let stored = try #require(try await base.instance.store.card(serial: serial))
                    #expect(stored.pukRotationPending && stored.pukReleasedAt != nil, "the card's record shows the PUK out")
                    // Released again: the same two PUKs.
                    let again = try await server.releasePUK(unlockID: sent.unlockID, token: verified.token)
                    #expect(again.puk == release.puk && again.nextPUK == release.nextPUK)
                    try await client.reset(unlockID: sent.unlockID, token: verified.token, passcode: "864209", repeated: "864209")
                    try await card.verifyPIN("864209")
                    #expect(try await base.instance.store.card(serial: serial)?.pukRotationPending == false)
                    // The card's PUK is the stored one, with every try: the released one is refused.
                    #expect(try await card.pinState().pukTriesLeft == 3)
                    try await card.changePUK(current: release.nextPUK, new: release.nextPUK)
                    await #expect(throws: CardDeskError.self) { try await card.changePUK(current: release.puk, new: release.puk) }
                }

                // Stopped after the reset, and the unlock's token has run out: the card's next contact (a renewal here)
                // changes its PUK.
                let card = try await fixture.lockedCard("next-contact")
                let serial = try await card.serial()
                let sent = try await fixture.send(card)
                let verified = try await server.verifyUnlockCode(unlockID: sent.unlockID, code: try fixture.mailbox.lastCode())
                let release = try await server.releasePUK(unlockID: sent.unlockID, token: verified.token)
                try await card.unblockPIN(puk: release.puk, newPIN: "975310")
                base.clock.advance(seconds: UnlockService.tokenLifetime + 1)
                #expect(try await server.renewalStatus(cardSerial: serial).pukRotationPending)
                try await RenewalClient(server: server, card: card).renew(passcode: "975310") { _, _ in }
                #expect(try await base.instance.store.card(serial: serial)?.pukRotationPending == false)
                try await card.changePUK(current: release.nextPUK, new: release.nextPUK)
                #expect(try await fixture.audit("card.unlock").contains { $0.contains("PUK rotated on the card at its next contact") })
            }
        }
    }

    @Test("Expired, reused, sixth wrong, fourth within an hour: each refused with its own message, and audited")
    func codeRules() async throws {
        try await RenewalFixture.with { base in
            let fixture = UnlockFixture(base)
            let unlock = fixture.unlock
            let card = try await fixture.lockedCard("rules")

            // Wrong five times: the code is void, even the right one no longer works.
            let first = try await fixture.send(card)
            let right = try fixture.mailbox.lastCode()
            let wrong = right == "000000" ? "000001" : "000000"
            for left in [4, 3, 2, 1] {
                let refused = await #expect(throws: CardDeskError.self) { try await unlock.verify(unlockID: first.unlockID, code: wrong) }
                #expect(refused?.code == .wrongCode)
                #expect(refused?.reason == "That code is not right. You can try \(left) more time\(left == 1 ? "" : "s").")
            }
            let fifth = await #expect(throws: CardDeskError.self) { try await unlock.verify(unlockID: first.unlockID, code: wrong) }
            #expect(fifth?.code == .codeVoided)
            let sixth = await #expect(throws: CardDeskError.self) { try await unlock.verify(unlockID: first.unlockID, code: right) }
            #expect(sixth?.code == .codeVoided)
            #expect(sixth?.reason.contains("no longer works") == true)

            // Used once, then refused.
            let second = try await fixture.send(card, .sms)
            #expect(fixture.mailbox.all.last?.to == "07700900123")
            _ = try await unlock.verify(unlockID: second.unlockID, code: try fixture.mailbox.lastCode())
            let reused = await #expect(throws: CardDeskError.self) { try await unlock.verify(unlockID: second.unlockID, code: try fixture.mailbox.lastCode()) }
            #expect(reused?.code == .codeAlreadyUsed)

            // Fifteen minutes later, refused.
            let third = try await fixture.send(card)
            base.clock.advance(seconds: 15 * 60 + 1)
            let expired = await #expect(throws: CardDeskError.self) { try await unlock.verify(unlockID: third.unlockID, code: try fixture.mailbox.lastCode()) }
            #expect(expired?.code == .codeExpired)

            // A fourth code within the hour of the first: refused, nothing sent.
            let fourth = await #expect(throws: CardDeskError.self) { try await unlock.requestCode(cardSerial: try await card.serial(), channel: .email) }
            #expect(fourth?.code == .tooManyCodes)
            #expect(fourth?.reason.hasPrefix("You have asked for 3 codes in the last hour, the most allowed. Try again after ") == true)
            #expect(try await fixture.worker.sendDue() == 0)
            // An hour after the first, a code may be asked for again.
            base.clock.advance(seconds: 45 * 60)
            _ = try await fixture.send(card)

            let checks = try await fixture.audit("code.check")
            #expect(checks.filter { $0.hasPrefix("failure") && $0.contains("wrong code") }.count == 5)
            #expect(checks.contains { $0.contains("codeVoided") } && checks.contains { $0.contains("codeAlreadyUsed") } && checks.contains { $0.contains("codeExpired") })
            #expect(try await fixture.audit("code.send").contains { $0.hasPrefix("failure") && $0.contains("tooManyCodes") })
        }
    }

    @Test("Cancelled cards, expired certificates, no address, an unlisted email domain: refused with advice, and audited")
    func refusals() async throws {
        try await RenewalFixture.with { base in
            let fixture = UnlockFixture(base)
            let unlock = fixture.unlock
            let noContacts = try await base.issueCard("nocontacts")
            let none = await #expect(throws: CardDeskError.self) { try await unlock.options(cardSerial: try await noContacts.serial()) }
            #expect(none?.code == .noContactDetails)

            let domain = await #expect(throws: CardDeskError.self) {
                try await fixture.register(noContacts, .email, "jane@gmail.com")
            }
            #expect(domain?.code == .emailDomainNotAllowed)
            #expect(domain?.reason == "Email addresses for unlocking cards must be at one of: nhs.net, nhs.uk. Use your work email address.")

            let cancelled = try await fixture.lockedCard("cancelled")
            try await base.instance.store.cancelCard(serial: try await cancelled.serial(), audit: AuditEvent(
                action: .raAction, actor: "test", subject: "card", time: base.clock.now()
            ))
            let refusedCancelled = await #expect(throws: CardDeskError.self) { try await unlock.options(cardSerial: try await cancelled.serial()) }
            #expect(refusedCancelled?.code == .cardCancelled)
            #expect(refusedCancelled?.reason.contains("Go to your Registration Authority") == true)

            let expiring = try await fixture.lockedCard("expiring", validityDays: 2)
            base.clock.advance(seconds: 3 * 86_400)
            let refusedExpired = await #expect(throws: CardDeskError.self) { try await unlock.requestCode(cardSerial: try await expiring.serial(), channel: .email) }
            #expect(refusedExpired?.code == .certificatesExpired)

            // A card whose PUK is used up is blocked for good: refused before any code is sent, and the card itself
            // refuses an authorised reset.
            let blocked = try await fixture.lockedCard("blocked")
            for _ in 0..<3 { try? await blocked.unblockPIN(puk: "00000000", newPIN: "975310") }
            #expect(try await blocked.pinState().pukTriesLeft == 0)
            let offline = UnlockClient(server: ServerClient(baseURL: URL(string: "http://127.0.0.1:9")!), card: blocked)
            let refusedBlocked = await #expect(throws: CardDeskError.self) { try await offline.options() }
            #expect(refusedBlocked?.code == .cardBlocked)
            #expect(refusedBlocked?.reason.contains("Take it to your Registration Authority") == true)
            let verifiedCard = await #expect(throws: CardDeskError.self) { try await blocked.unblockPIN(puk: "12345678", newPIN: "975310") }
            #expect(verifiedCard?.code == .cardBlocked)

            let failures = try await fixture.audit("card.unlock").filter { $0.hasPrefix("failure") }
            #expect(failures.contains { $0.contains("noContactDetails") } && failures.contains { $0.contains("cardCancelled") } && failures.contains { $0.contains("certificatesExpired") })
            #expect(try await fixture.audit("user.contacts").contains { $0.hasPrefix("failure") && $0.contains("emailDomainNotAllowed") })
        }
    }

    @Test("A contact address counts once the code sent to it comes back; codes and passcodes are nowhere in the database")
    func contactsAndSecrets() async throws {
        try await RenewalFixture.with { base in
            let fixture = UnlockFixture(base)
            let unlock = fixture.unlock
            let consenting = try await base.issueCard("consenting")
            let pending = try await fixture.register(consenting, .email, "Jane.Doe@NHS.net")
            #expect(try await base.instance.store.contacts(userID: base.user)?.emailConfirmed != true)
            #expect(try await fixture.worker.sendDue() == 1)
            let code = try fixture.mailbox.lastCode()
            let contacts = try await unlock.confirmContact(userID: base.user, confirmationID: pending.unlockID, code: code)
            #expect(contacts.email == "jane.doe@nhs.net" && contacts.emailConfirmed)

            // Sending fails while the relay is down; the message stays queued and goes when it is back.
            fixture.mailbox.failing.withLock { $0 = true }
            let card = try await fixture.lockedCard("relay")
            let sent = try await unlock.requestCode(cardSerial: try await card.serial(), channel: .email)
            #expect(try await fixture.worker.sendDue() == 0)
            fixture.mailbox.failing.withLock { $0 = false }
            base.clock.advance(seconds: 2)
            #expect(try await fixture.worker.sendDue() == 1)
            let unlockCode = try fixture.mailbox.lastCode()
            let verified = try await unlock.verify(unlockID: sent.unlockID, code: unlockCode)
            try await LiveServer.with(base.instance) { server in
                try await UnlockClient(server: server, card: card).reset(unlockID: sent.unlockID, token: verified.token, passcode: "975310", repeated: "975310")
            }

            let database = try Data(contentsOf: base.folder.appendingPathComponent("data/carddesk.sqlite"))
            for secret in [code, unlockCode, "975310", verified.token] {
                #expect(database.range(of: Data(secret.utf8)) == nil, "\(secret) is in the database in clear")
            }
        }
    }
}
