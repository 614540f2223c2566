@testable import CardAgent
import CardDeskAPI
import CardDeskCore
import CardDeskTestSupport
import Foundation
import Smartcard
import Synchronization
import Testing
import VirtualSmartcard

/// What the agent writes and whether the terminal echoes, as the terminal would see them.
final class TerminalRecord: Sendable {
    private let state = Mutex<(lines: [String], echo: [Bool])>(([], []))
    var lines: [String] { state.withLock { $0.lines } }
    var echo: [Bool] { state.withLock { $0.echo } }
    func say(_ line: String) { state.withLock { $0.lines.append(line) } }
    func hide(_ hidden: Bool) { state.withLock { $0.echo.append(!hidden) } }
}

/// The agent driving an issued virtual card against the real server, from the terminal.
@Suite("Agent: signing in at the terminal")
struct AgentSessionTests {
    /// The agent at the terminal, watching the fixture's reader folder, writing to `record`.
    static func terminalAgent(_ fixture: RenewalFixture, _ server: ServerClient, _ record: TerminalRecord, bridgePort: Int) -> WorkstationAgent {
        WorkstationAgent(
            reader: FolderReader(folder: fixture.folder), server: server, bridgePort: bridgePort,
            output: { record.say($0) }, opener: { _ in false }, hideInput: { record.hide($0) }
        )
    }

    @Test("A wrong passcode is explained and asked for again with the echo off; the right one signs in; removal logs out at the server")
    func terminalSignIn() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let card = try await fixture.issueCard("terminal", validityDays: 365)
                try await card.reset()
                let record = TerminalRecord()
                let agent = Self.terminalAgent(fixture, server, record, bridgePort: 0)
                await agent.inserted(serial: try await card.serial(), card: card)
                #expect(record.lines.last == "Passcode:")
                #expect(record.echo == [false])

                await agent.line("000000")
                #expect(Array(record.lines.suffix(2)) == ["The passcode you entered is not valid. You have 2 remaining tries", "Passcode:"])
                #expect(await agent.status().triesLeft == 2)
                #expect(await agent.status().phase == .awaitingPasscode)

                await agent.line("123456")
                #expect(await agent.status().phase == .signedIn)
                #expect(await agent.status().triesLeft == 3, "a passcode the card accepts restores every try")
                #expect(record.echo == [false, true], "the echo comes back once the passcode is taken")
                #expect(record.lines.last == "Signed in as Jane Doe (555254600106) in role R8000@RBQ.")
                let token = try #require(await agent.state.token)
                let kept = try await server.checkIn(bridgePort: 47000, token: token)
                #expect(kept.session?.active == true)
                #expect(kept.challenge == nil, "a signed-in agent needs no sign-in challenge")

                await agent.removed()
                #expect(record.lines.last == "Card removed: you have been logged out.")
                #expect(await agent.status().phase == .noCard)
                #expect(try await server.checkIn(bridgePort: 47000, token: token).session?.active == false)
            }
        }
    }

    @Test("A sign-in signs the challenge the last check-in brought: no request for one (they are spent here)")
    func signInWithCheckInChallenge() async throws {
        // At 4 % the limits allow, a minute per address: 5 challenges, 2 sign-in requests (the agent's renewal-status
        // question and its sign-in).
        try await RenewalFixture.with(flags: ["rate.limit.percent": "4"]) { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let card = try await fixture.issueCard("held", validityDays: 365)
                try await card.reset()
                // This address's challenges for the minute, spent: the next request for one is refused.
                for _ in 0..<5 { _ = try await server.loginChallenge() }
                let refused = await #expect(throws: CardDeskError.self) { _ = try await server.loginChallenge() }
                #expect(refused?.code == .tooManyRequests)

                let record = TerminalRecord()
                let agent = Self.terminalAgent(fixture, server, record, bridgePort: 47001)
                await agent.heartbeat()
                await agent.inserted(serial: try await card.serial(), card: card)
                await agent.line("123456")
                #expect(await agent.status().phase == .signedIn, "\(record.lines)")
                #expect(record.lines.last == "Signed in as Jane Doe (555254600106) in role R8000@RBQ.")

            }
        }
    }

    @Test("A check-in's challenge signs in once, as one asked for does: offered again, it is refused")
    func checkInChallengeOnce() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let card = try await fixture.issueCard("once", validityDays: 365)
                let serial = try await card.serial()
                let challenge = try #require(try await server.checkIn(bridgePort: 47002, token: nil).challenge)
                let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
                let login = LoginAPI.Login(cardSerial: serial, challenge: challenge, signature: Data(signature.rawRepresentation))
                #expect(try await server.login(login).token != nil)
                let again = await #expect(throws: CardDeskError.self) { _ = try await server.login(login) }
                #expect(again?.code == .authenticationFailed)
                #expect(again?.reason.contains("already used") == true)
                // Two check-ins, two challenges.
                let next = try await server.checkIn(bridgePort: 47002, token: nil).challenge
                #expect(next != nil && next != challenge)
            }
        }
    }
}
