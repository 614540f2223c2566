import CardDeskAPI
import CardDeskCore
import CertificateAuthority
import Foundation
import Testing
import VirtualSmartcard

/// Item 6: an unlock address changes only with the card's consent (passcode at the agent), and the old one is told.
@Suite("Security: unlock contact changes")
struct ContactChangeTests {
    @Test("No signature, or a signature over another address, changes nothing; a consented change is told to the old address")
    func consentAndNotice() async throws {
        try await SecurityFixture.with { fixture in
            let unlock = fixture.instance.unlock
            _ = try await unlock.setContacts(userID: fixture.user, email: "jane.doe@nhs.net", mobile: nil, actor: "test")
            let card = try await fixture.issueCard("consent")
            let serial = try await card.serial()

            // A session alone (what a program on the workstation could get) is not enough.
            let unsigned = await #expect(throws: CardDeskError.self) {
                try await unlock.registerContact(
                    userID: fixture.user, cardSerial: serial, channel: .email, address: "attacker@nhs.net",
                    challenge: try await unlock.contactChallenge(), signature: []
                )
            }
            #expect(unsigned?.code == .authenticationFailed)
            // The card's consent to one address does not carry over to another.
            let challenge = try await unlock.contactChallenge()
            let signature = try await card.sign(
                ContactChangeMessage.make(challenge: challenge, cardSerial: serial, channel: .email, address: "jane.new@nhs.net"), with: .authentication
            )
            let swapped = await #expect(throws: CardDeskError.self) {
                try await unlock.registerContact(
                    userID: fixture.user, cardSerial: serial, channel: .email, address: "attacker@nhs.net",
                    challenge: challenge, signature: signature.rawRepresentation
                )
            }
            #expect(swapped?.code == .authenticationFailed)
            #expect(try await fixture.instance.store.contacts(userID: fixture.user)?.email == "jane.doe@nhs.net")
            #expect(try await fixture.audit(.contactsUpdate).filter { $0.hasPrefix("failure") }.count == 2)

            // With the card's consent: a code to the new address; once confirmed, the old address is told.
            let fresh = try await unlock.contactChallenge()
            let consent = try await card.sign(
                ContactChangeMessage.make(challenge: fresh, cardSerial: serial, channel: .email, address: "jane.new@nhs.net"), with: .authentication
            )
            let pending = try await unlock.registerContact(
                userID: fixture.user, cardSerial: serial, channel: .email, address: "jane.new@nhs.net", challenge: fresh, signature: consent.rawRepresentation
            )
            let due = try await fixture.instance.store.dueMessages(now: fixture.clock.now().adding(seconds: 60), limit: 10)
            let codeMessage = try #require(due.first { $0.recipient == "jane.new@nhs.net" })
            let body = String(decoding: try fixture.masterKey.open(codeMessage.bodySealed, label: "outbox \(codeMessage.id)"), as: UTF8.self)
            let code = String(try #require(body.firstMatch(of: /\b(\d{6})\b/)?.1))
            _ = try await unlock.confirmContact(userID: fixture.user, confirmationID: pending.unlockID, code: code)
            let notices = try await fixture.instance.store.dueMessages(now: fixture.clock.now().adding(seconds: 60), limit: 10)
                .filter { $0.recipient == "jane.doe@nhs.net" }
            #expect(notices.map(\.subject) == ["Your smartcard unlock address was changed"])
            #expect(try await fixture.instance.store.contacts(userID: fixture.user)?.email == "jane.new@nhs.net")
        }
    }
}
