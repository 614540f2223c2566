import CardAgent
import CardDeskCore
import CardDeskServerKit
import CardDeskStore
import CardDeskTestSupport
import Foundation
import Logging
import Messaging
import RegistrationAuthority
import Smartcard
import Testing
import VirtualSmartcard

@Suite("Expiry reminders")
struct ReminderTests {
    @Test("Each reminder goes once (90, 30, 7 days), to the confirmed address, never to a renewed card; a later threshold sends again")
    func remindersOnce() async throws {
        try await RenewalFixture.with { fixture in
            let store = fixture.instance.store
            let mailbox = Mailbox()
            let outbox = fixture.instance.outboxWorker(senders: MessageSenders(email: mailbox, sms: mailbox), logger: Logger(label: "test"))
            var cards: [String: PIVCardSession] = [:]
            for (id, name, days, email) in [
                ("555254600801", "Ann", 80, true), ("555254600802", "Ben", 20, true), ("555254600803", "Cat", 5, true),
                ("555254600804", "Dan", 200, true), ("555254600805", "Eve", 20, true), ("555254600806", "Fay", 20, false),
            ] {
                let userID = try UserID(id)
                try await store.addUser(
                    try User(id: userID, givenName: name, familyName: "Due", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")]),
                    audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:\(id)", time: fixture.clock.now())
                )
                if email { _ = try await fixture.instance.unlock.setContacts(userID: userID, email: "\(name.lowercased()).due@nhs.net", mobile: nil, actor: "test") }
                let file = fixture.folder.appendingPathComponent("\(id).json")
                _ = try await fixture.instance.cardIssuer.issueVirtualCard(userID: userID, file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: days, actor: "test")
                cards[name] = PIVCardSession(transport: VirtualPIVCard(file: file))
            }
            // Eve renews before any reminder runs.
            let server = try await LiveServer.start(fixture.instance)
            try await RenewalClient(server: ServerClient(baseURL: server.url), card: try #require(cards["Eve"])).renew(passcode: "123456") { _, _ in }
            await server.stop()

            let reminders = try #require(fixture.instance.expiryReminders)
            #expect(reminders.days == [90, 30, 7])
            #expect(try await reminders.run() == 3)
            #expect(try await outbox.sendDue() == 3)
            let sent = mailbox.all
            #expect(Set(sent.map(\.to)) == ["ann.due@nhs.net", "ben.due@nhs.net", "cat.due@nhs.net"])
            let ben = try #require(sent.first { $0.to == "ben.due@nhs.net" })
            let benSerial = try await cards["Ben"]!.serial()
            #expect(ben.subject.hasPrefix("Your smartcard certificates expire on "))
            #expect(ben.body.contains("Dear Ben,") && ben.body.contains(benSerial) && ben.body.contains("in 20 days"), "\(ben.body)")
            #expect(ben.body.contains("/?operation=selfRenewSmartcard"))
            let audit = try await fixture.audit(.expiryReminder)
            #expect(audit.count == 3 && audit.contains { $0.contains("expiry reminder 30 days") } && audit.contains { $0.contains("expiry reminder 90 days") })

            // Again: nothing new (what was sent is in the store; restarts are tested with the real server in
            // Tests/Browser/test_reminders.py).
            #expect(try await reminders.run() == 0)

            // Two weeks on: Ben (6 days left) gets his 7-day reminder; Ann (66 days) had hers; Cat's certificates expired.
            fixture.clock.advance(seconds: 14 * 86_400)
            #expect(try await reminders.run() == 1)
            #expect(try await outbox.sendDue() == 1)
            #expect(mailbox.all.last?.to == "ben.due@nhs.net")
            #expect(mailbox.all.last?.body.contains("in 6 days") == true)
            #expect(try await reminders.run() == 0)
        }
    }
}
