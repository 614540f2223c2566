import CardDeskCore
import CardDeskStore
import Foundation
import Testing

@Suite("Audit chain")
struct AuditChainTests {
    @Test("An empty log and a written log verify", arguments: TestBackend.available)
    func intact(backend: TestBackend) async throws {
        try await backend.withStore { store in
            #expect(try await AuditChain.verify(store) == .intact(entries: 0))
            for index in 1...5 {
                let entry = try await store.appendAudit(Fixtures.event(details: "step \(index)"))
                #expect(entry.sequence == Int64(index))
            }
            #expect(try await AuditChain.verify(store) == .intact(entries: 5))
        }
    }

    @Test("The database refuses to update or delete audit rows", arguments: TestBackend.available)
    func appendOnly(backend: TestBackend) async throws {
        let location = try backend.freshLocation()
        let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now)
        try await store.appendAudit(Fixtures.event())
        try await store.close()
        #expect(throws: (any Error).self) {
            try Tamper.run(location, "UPDATE audit_events SET details = 'changed' WHERE seq = 1")
        }
        #expect(throws: (any Error).self) {
            try Tamper.run(location, "DELETE FROM audit_events WHERE seq = 1")
        }
    }

    @Test("Editing one row by hand breaks the chain at that row", arguments: TestBackend.available)
    func tamperedRow(backend: TestBackend) async throws {
        let location = try backend.freshLocation()
        let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now)
        for index in 1...6 { try await store.appendAudit(Fixtures.event(details: "step \(index)")) }
        try await store.close()

        // An attacker with the database owner's rights drops the guard and edits entry 4.
        try Tamper.dropGuards(location)
        try Tamper.run(location, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 4")

        let reopened = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now)
        guard case .broken(let sequence, let reason) = try await AuditChain.verify(reopened) else {
            Issue.record("an edited row must break the chain")
            return
        }
        #expect(sequence == 4)
        #expect(reason.contains("changed"))
        try await reopened.close()
    }

    @Test("Removing entries from the middle or the end is detected", arguments: TestBackend.available)
    func removedRows(backend: TestBackend) async throws {
        let location = try backend.freshLocation()
        let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now)
        for index in 1...5 { try await store.appendAudit(Fixtures.event(details: "step \(index)")) }
        try await store.close()
        try Tamper.dropGuards(location)
        try Tamper.run(location, "DELETE FROM audit_events WHERE seq = 5")

        let reopened = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now)
        guard case .broken(let sequence, _) = try await AuditChain.verify(reopened) else {
            Issue.record("a truncated log must not verify")
            return
        }
        #expect(sequence == 5)
        try await reopened.close()
        try Tamper.run(location, "DELETE FROM audit_events WHERE seq = 2")
        let again = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now)
        #expect(try await AuditChain.verify(again) == .broken(sequence: 2, reason: "entry 2 is missing (the next stored entry is 3)"))
        try await again.close()
    }

    @Test("The hash covers every field")
    func hashCoversFields() {
        let base = AuditEvent(action: .login, actor: "a", subject: "s", outcome: .success, details: "d", time: Fixtures.now)
        let variants = [
            AuditEvent(action: .unlock, actor: "a", subject: "s", outcome: .success, details: "d", time: Fixtures.now),
            AuditEvent(action: .login, actor: "b", subject: "s", outcome: .success, details: "d", time: Fixtures.now),
            AuditEvent(action: .login, actor: "a", subject: "t", outcome: .success, details: "d", time: Fixtures.now),
            AuditEvent(action: .login, actor: "a", subject: "s", outcome: .failure, details: "d", time: Fixtures.now),
            AuditEvent(action: .login, actor: "a", subject: "s", outcome: .success, details: "e", time: Fixtures.now),
            AuditEvent(action: .login, actor: "a", subject: "s", outcome: .success, details: "d", time: Fixtures.now.adding(seconds: 1)),
            // Field boundaries matter: "ab"+"" must differ from "a"+"b".
            AuditEvent(action: .login, actor: "as", subject: "", outcome: .success, details: "d", time: Fixtures.now),
        ]
        let hash = AuditChain.hash(sequence: 1, event: base, previousHash: AuditChain.genesisHash)
        #expect(hash.count == 64)
        for variant in variants {
            #expect(AuditChain.hash(sequence: 1, event: variant, previousHash: AuditChain.genesisHash) != hash)
        }
        #expect(AuditChain.hash(sequence: 2, event: base, previousHash: AuditChain.genesisHash) != hash)
        #expect(AuditChain.hash(sequence: 1, event: base, previousHash: String(repeating: "1", count: 64)) != hash)
    }
}

/// Edits a database behind the store's back, with the real command-line clients (sqlite3, psql).
enum Tamper {
    static func run(_ location: DatabaseLocation, _ sql: String) throws {
        switch location {
        case .sqlite(let path):
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["sqlite3", path, sql]
            let errors = Pipe()
            process.standardError = errors
            try process.run()
            process.waitUntilExit()
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            guard process.terminationStatus == 0, !text.contains("Error") else {
                throw CardDeskError(.storageUnavailable, "sqlite3 failed: \(text)")
            }
        case .postgres(let url):
            try TestBackend.psql(url, sql)
        }
    }

    static func dropGuards(_ location: DatabaseLocation) throws {
        switch location {
        case .sqlite:
            try run(location, "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;")
        case .postgres:
            try run(location, "DROP TRIGGER audit_events_append_only ON audit_events")
        }
    }
}
