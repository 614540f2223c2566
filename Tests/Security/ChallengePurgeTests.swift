import CardDeskCore
import CardDeskWeb
import Foundation
import Logging
import Testing

/// Item 8: sign-in challenges are unauthenticated writes. Beyond the rate limits, the ones nobody used are deleted
/// once they expire, by the maintenance pass that runs beside the web app.
@Suite("Security: unused challenges are purged")
struct ChallengePurgeTests {
    @Test("100 unused sign-in challenges stay until they expire, and are all deleted after", arguments: Backend.available)
    func purgedAfterExpiry(backend: Backend) async throws {
        try await SecurityFixture.with(backend) { fixture in
            for _ in 0..<100 { _ = try await fixture.instance.login.challenge() }
            #expect(try await fixture.instance.store.purgeExpired(now: fixture.clock.now()) == 0, "nothing is purged before it expires")
            fixture.clock.advance(seconds: 3600)
            #expect(try await fixture.instance.store.purgeExpired(now: fixture.clock.now()) == 100)
            // Signing in still works after the purge: a fresh challenge is unaffected.
            let card = try await fixture.issueCard("after-purge")
            #expect(try await fixture.signIn(card).userID == fixture.user.rawValue)
        }
    }

    @Test("The maintenance worker beside the web app does the purge on its own")
    func workerPurges() async throws {
        try await SecurityFixture.with { fixture in
            for _ in 0..<20 { _ = try await fixture.instance.login.challenge() }
            let database = fixture.folder.appendingPathComponent("data/carddesk.sqlite").path
            #expect(try Self.count(database) == "20")
            fixture.clock.advance(seconds: 3600)
            let worker = MaintenanceWorker(store: fixture.instance.store, clock: fixture.clock, logger: Logger(label: "maintenance"), interval: .milliseconds(20))
            let running = Task { try await worker.run() }
            var left = "20"
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
