import CardDeskAPI
import CardDeskCore
import CardDeskWeb
import Foundation
import Logging
import RegistrationAuthority
import Smartcard
import Testing

/// Item 8: sign-in challenges are unauthenticated requests. They write nothing (each challenge carries its expiry and
/// a MAC); only a used one is written, in the transaction that uses it, and it is deleted once it expires, by the
/// maintenance pass that runs beside the web app.
@Suite("Security: challenges write nothing until used, and used ones are purged")
struct ChallengePurgeTests {
    @Test("100 unused sign-in challenges write nothing; a used one stays until it expires (a replay is refused), then is deleted", arguments: Backend.available)
    func purgedAfterExpiry(backend: Backend) async throws {
        try await SecurityFixture.with(backend) { fixture in
            for _ in 0..<100 { _ = try await fixture.instance.login.challenge() }
            fixture.clock.advance(seconds: 3600)
            #expect(try await fixture.instance.store.purgeExpired(now: fixture.clock.now()) == 0, "nothing was written")
            let card = try await fixture.issueCard("after-purge")
            #expect(try await fixture.signIn(card).userID == fixture.user.rawValue)
            // The used challenge is kept until it expires: the same challenge and signature again are refused.
            let login = fixture.instance.login
            let challenge = try await login.challenge()
            let serial = try await card.serial()
            let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication).rawRepresentation
            _ = try await login.login(cardSerial: serial, challenge: challenge, signature: signature)
            let replay = await #expect(throws: CardDeskError.self) { try await login.login(cardSerial: serial, challenge: challenge, signature: signature) }
            #expect(replay?.reason.contains("expired or was already used") == true)
            #expect(try await fixture.instance.store.purgeExpired(now: fixture.clock.now()) == 0, "nothing is purged before it expires")
            fixture.clock.advance(seconds: 3600)
            #expect(try await fixture.instance.store.purgeExpired(now: fixture.clock.now()) == 2)
        }
    }

    @Test("One challenge and signature sent by 8 requests at once: one session opens, one renewal starts; the others are refused", arguments: Backend.available)
    func usedOnceUnderConcurrency(backend: Backend) async throws {
        try await SecurityFixture.with(backend) { fixture in
            let card = try await fixture.issueCard("race")
            let serial = try await card.serial()
            let login = fixture.instance.login
            let challenge = try await login.challenge()
            let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication).rawRepresentation
            let sessions = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 { group.addTask { (try? await login.login(cardSerial: serial, challenge: challenge, signature: signature)) != nil } }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(sessions == 1)

            let engine = fixture.instance.renewal
            let renewalChallenge = try await engine.challenge()
            let renewalSignature = try await card.sign(RenewalStartMessage.make(challenge: renewalChallenge, cardSerial: serial), with: .authentication).rawRepresentation
            let started = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 {
                    group.addTask { (try? await engine.start(cardSerial: serial, challenge: renewalChallenge, signature: renewalSignature)) != nil }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(started == 1)
        }
    }

    @Test("The maintenance worker beside the web app does the purge on its own")
    func workerPurges() async throws {
        try await SecurityFixture.with { fixture in
            for _ in 0..<20 { _ = try await fixture.instance.login.challenge() }
            let database = fixture.folder.appendingPathComponent("data/carddesk.sqlite").path
            #expect(try Self.count(database) == "0", "unused challenges are written nowhere")
            let card = try await fixture.issueCard("worker")
            for _ in 0..<3 { _ = try await fixture.signIn(card) }
            #expect(try Self.count(database) == "3")
            fixture.clock.advance(seconds: 3600)
            let worker = MaintenanceWorker(store: fixture.instance.store, clock: fixture.clock, logger: Logger(label: "maintenance"), interval: .milliseconds(20))
            let running = Task { try await worker.run() }
            var left = "3"
            for _ in 0..<500 where left != "0" {
                try await Task.sleep(for: .milliseconds(20))
                left = try Self.count(database)
            }
            running.cancel()
            _ = try? await running.value
            #expect(left == "0")
        }
    }

    /// The challenges table, read with the sqlite3 program beside the running store.
    static func count(_ database: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sqlite3", database, "SELECT count(*) FROM challenges"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
