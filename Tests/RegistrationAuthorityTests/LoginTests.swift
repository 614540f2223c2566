import CardAgent
import CardDeskAPI
import CardDeskTestSupport
import CardDeskCore
import CardDeskStore
import Foundation
import RegistrationAuthority
import Smartcard
import Testing
import VirtualSmartcard

@Suite("Signing in with a card")
struct LoginTests {
    static func signIn(_ fixture: RenewalFixture, _ card: PIVCardSession, claiming: String? = nil) async throws -> SessionView {
        let challenge = try await fixture.instance.login.challenge()
        let serial = try await card.serial()
        let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: claiming ?? serial), with: .authentication)
        return try await fixture.instance.login.login(cardSerial: claiming ?? serial, challenge: challenge, signature: signature.rawRepresentation)
    }

    @Test("A card signs in, the user picks the second of two roles, and removing the card ends the session")
    func rolesAndLogout() async throws {
        try await RenewalFixture.with { fixture in
            try await fixture.instance.store.addUser(
                try User(id: try UserID("555254600199"), givenName: "Two", familyName: "Roles", organisation: "RBQ",
                         roles: [try Role(parsing: "S0080:G0450:R5080@RBQ"), try Role(parsing: "S8000:G8000:R8000@X26")]),
                audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:555254600199", time: fixture.clock.now())
            )
            let file = fixture.folder.appendingPathComponent("two.json")
            _ = try await fixture.instance.cardIssuer.issueVirtualCard(userID: try UserID("555254600199"), file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: 30, actor: "test")
            let card = PIVCardSession(transport: VirtualPIVCard(file: file))
            try await card.verifyPIN("123456")

            let session = try await Self.signIn(fixture, card)
            let token = try #require(session.token)
            #expect(session.name == "Two Roles")
            #expect(session.roles == ["S0080:G0450:R5080@RBQ", "S8000:G8000:R8000@X26"])
            #expect(session.role == nil)
            #expect(session.certificates.count == 2)
            #expect(session.renewal.renewalAvailable)

            let chosen = try await fixture.instance.login.chooseRole(token: token, number: 2)
            #expect(chosen.role == "S8000:G8000:R8000@X26")
            await #expect(throws: CardDeskError.self) { try await fixture.instance.login.chooseRole(token: token, number: 3) }

            try await fixture.instance.login.logout(token: token, reason: "card removed")
            let ended = await #expect(throws: CardDeskError.self) { try await fixture.instance.login.current(token: token) }
            #expect(ended?.reason == "You have been logged out (card removed). Insert your card and sign in again.")
        }
    }

    @Test("A one-role user is signed into it; idle sessions end; replayed challenges and impostor cards are refused")
    func refusals() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("one")
            let other = try await fixture.issueCard("other")
            let session = try await Self.signIn(fixture, card)
            #expect(session.role == "R8000@RBQ")
            fixture.clock.advance(seconds: 16 * 60)
            let idle = await #expect(throws: CardDeskError.self) { try await fixture.instance.login.current(token: session.token ?? "") }
            #expect(idle?.reason.contains("idle timeout") == true)

            let impostor = await #expect(throws: CardDeskError.self) { try await Self.signIn(fixture, other, claiming: try await card.serial()) }
            #expect(impostor?.code == .authenticationFailed)

            let challenge = try await fixture.instance.login.challenge()
            let serial = try await card.serial()
            let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication).rawRepresentation
            _ = try await fixture.instance.login.login(cardSerial: serial, challenge: challenge, signature: signature)
            let replay = await #expect(throws: CardDeskError.self) {
                try await fixture.instance.login.login(cardSerial: serial, challenge: challenge, signature: signature)
            }
            #expect(replay?.code == .authenticationFailed)
            // A renewal challenge is not a sign-in challenge.
            let renewalChallenge = try await fixture.instance.renewal.challenge()
            let crossed = try await card.sign(LoginMessage.make(challenge: renewalChallenge, cardSerial: serial), with: .authentication).rawRepresentation
            await #expect(throws: CardDeskError.self) {
                try await fixture.instance.login.login(cardSerial: serial, challenge: renewalChallenge, signature: crossed)
            }
        }
    }

    @Test("A browser joins the agent's session with a single-use code; it ends with the agent's session, or when idle")
    func handover() async throws {
        try await RenewalFixture.with { fixture in
            let login = fixture.instance.login
            let card = try await fixture.issueCard("handover")
            let agentSession = try await Self.signIn(fixture, card)
            let agentToken = try #require(agentSession.token)

            let code = try await login.handover(token: agentToken).code
            let browser = try await login.redeemHandover(code: code)
            let browserToken = try #require(browser.token)
            #expect(browserToken != agentToken)
            #expect(browser.userID == agentSession.userID && browser.role == agentSession.role)
            #expect(try await login.status(token: browserToken) == .init(active: true, reason: nil))
            // Single use; a made-up or cross-session code is refused.
            let reused = await #expect(throws: CardDeskError.self) { try await login.redeemHandover(code: code) }
            #expect(reused?.code == .authenticationFailed)
            let secret = String(code.split(separator: ".")[1])
            await #expect(throws: CardDeskError.self) { try await login.redeemHandover(code: "\(browser.id).\(secret)") }
            // A browser session cannot hand over further; the page's bridge token is the agent's.
            await #expect(throws: CardDeskError.self) { try await login.handover(token: browserToken) }
            #expect(try await login.bridgeToken(token: browserToken) == BridgeToken.derive(sessionToken: agentToken))

            // A code expires after a minute.
            let late = try await login.handover(token: agentToken).code
            fixture.clock.advance(seconds: 61)
            await #expect(throws: CardDeskError.self) { try await login.redeemHandover(code: late) }

            // Removing the card ends the agent's session and with it the browser's, with the reason.
            try await login.logout(token: agentToken, reason: "card removed")
            #expect(try await login.status(token: browserToken) == .init(active: false, reason: "card removed"))
            let ended = await #expect(throws: CardDeskError.self) { try await login.current(token: browserToken) }
            #expect(ended?.reason.contains("card removed") == true)

            // A browser session left idle ends on its own; logging out of the page ends the agent's session too.
            let again = try #require(try await Self.signIn(fixture, card).token)
            let page = try #require(try await login.redeemHandover(code: try await login.handover(token: again).code).token)
            fixture.clock.advance(seconds: 10 * 60)
            _ = try await login.current(token: again)
            fixture.clock.advance(seconds: 6 * 60)
            #expect(try await login.status(token: page) == .init(active: false, reason: "idle timeout"))
            let third = try #require(try await Self.signIn(fixture, card).token)
            let page3 = try #require(try await login.redeemHandover(code: try await login.handover(token: third).code).token)
            try await login.logout(token: page3, reason: "logged out")
            #expect(try await login.status(token: third) == .init(active: false, reason: "logged out"))
        }
    }

    @Test("The agent's check-in keeps its session open while the card is in, writing last-seen at most every two minutes")
    func keepAlive() async throws {
        try await RenewalFixture.with { fixture in
            let login = fixture.instance.login
            let token = try #require(try await Self.signIn(fixture, try await fixture.issueCard("alive")).token)
            fixture.clock.advance(seconds: 10 * 60)
            #expect(try await login.keepAlive(token: token) == .init(active: true, reason: nil))    // writes (10 min old)
            fixture.clock.advance(seconds: 10 * 60)
            #expect(try await login.keepAlive(token: token) == .init(active: true, reason: nil))    // writes again
            fixture.clock.advance(seconds: 30)
            #expect(try await login.keepAlive(token: token) == .init(active: true, reason: nil))    // 30 s: no write
            fixture.clock.advance(seconds: 14 * 60 + 45)
            // 15 min 15 s since the last write: the 30-second check-in did not count, so the session has ended.
            #expect(try await login.keepAlive(token: token) == .init(active: false, reason: "idle timeout"))
            #expect(try await login.keepAlive(token: "unknown") == .init(active: false, reason: "not signed in"))
        }
    }

    @Test("After renewal the new certificate signs in and the old key is refused; the home data shows the new expiry")
    func afterRenewal() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("renewed")
            let before = try await Self.signIn(fixture, card)
            // A copy of the card as it was (the old keys), as someone who cloned a virtual card before the renewal has.
            let copy = fixture.folder.appendingPathComponent("renewed-copy.json")
            try FileManager.default.copyItem(at: fixture.folder.appendingPathComponent("renewed.json"), to: copy)
            let oldCard = PIVCardSession(transport: VirtualPIVCard(file: copy))
            try await oldCard.verifyPIN("123456")
            let server = try await LiveServer.start(fixture.instance)
            try await RenewalClient(server: ServerClient(baseURL: server.url), card: card).renew(passcode: "123456") { _, _ in }
            await server.stop()
            // The renewal resets the card when it ends (nothing stays open): the passcode again, as at a new sign-in.
            try await card.verifyPIN("123456")

            let after = try await Self.signIn(fixture, card)
            #expect(after.certificates.map(\.serial) != before.certificates.map(\.serial))
            #expect(after.certificates.allSatisfy { $0.notAfter > fixture.clock.now().adding(seconds: 1000 * 86_400) })
            #expect(!after.renewal.renewalAvailable)

            let challenge = try await fixture.instance.login.challenge()
            let serial = try await card.serial()
            let old = try await oldCard.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
            let refused = await #expect(throws: CardDeskError.self) {
                try await fixture.instance.login.login(cardSerial: serial, challenge: challenge, signature: old.rawRepresentation)
            }
            #expect(refused?.code == .authenticationFailed)
        }
    }
}

@Suite("Signing in over HTTP")
struct LoginHTTPTests {
    @Test("The agent's client signs in, reads the session, and logs out; a missing token gets a clear 401")
    func overHTTP() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("http")
            let server = try await LiveServer.start(fixture.instance)
            let client = ServerClient(baseURL: server.url)
            do {
                let challenge = try await client.loginChallenge()
                let serial = try await card.serial()
                let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
                let session = try await client.login(.init(cardSerial: serial, challenge: challenge, signature: Data(signature.rawRepresentation)))
                let token = try #require(session.token)
                #expect(try await client.session(token: token).userID == "555254600106")
                try await client.logout(token: token, reason: "card removed")
                let ended = await #expect(throws: CardDeskError.self) { try await client.session(token: token) }
                #expect(ended?.code == .authenticationFailed)
                #expect(ended?.reason.contains("card removed") == true)
                let anonymous = await #expect(throws: CardDeskError.self) { try await client.session(token: "") }
                #expect(anonymous?.code == .authenticationFailed)
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        }
    }
}
