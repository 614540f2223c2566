import CardDeskCore
@testable import CardDeskStore
import Crypto
import Foundation
import Synchronization
import Testing

@Suite("Audit chain")
struct AuditChainTests {
    @Test("An empty log and a written log verify", arguments: TestBackend.available)
    func intact(backend: TestBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.verifyAuditChain() == .intact(entries: 0))
            for index in 1...5 {
                let entry = try await store.appendAudit(Fixtures.event(details: "step \(index)"))
                #expect(entry.sequence == Int64(index))
            }
            #expect(try await store.verifyAuditChain() == .intact(entries: 5))
        }
    }

    @Test("The database refuses to update or delete audit rows", arguments: TestBackend.available)
    func appendOnly(backend: TestBackend) async throws {
        let location = try backend.freshLocation()
        let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
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
        let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        for index in 1...6 { try await store.appendAudit(Fixtures.event(details: "step \(index)")) }
        try await store.close()

        // An attacker with the database owner's rights drops the guard and edits entry 4.
        try Tamper.dropGuards(location)
        try Tamper.run(location, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 4")

        let reopened = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        guard case .broken(let sequence, let reason) = try await reopened.verifyAuditChain() else {
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
        let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        for index in 1...5 { try await store.appendAudit(Fixtures.event(details: "step \(index)")) }
        try await store.close()
        try Tamper.dropGuards(location)
        try Tamper.run(location, "DELETE FROM audit_events WHERE seq = 5")

        let reopened = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        guard case .broken(let sequence, _) = try await reopened.verifyAuditChain() else {
            Issue.record("a truncated log must not verify")
            return
        }
        #expect(sequence == 5)
        try await reopened.close()
        try Tamper.run(location, "DELETE FROM audit_events WHERE seq = 2")
        let again = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        #expect(try await again.verifyAuditChain() == .broken(sequence: 2, reason: "entry 2 is missing (the next stored entry is 3)"))
        try await again.close()
    }

    private func allEntries(_ store: SQLStore) async throws -> [AuditEntry] {
        let entries = Mutex<[AuditEntry]>([])
        try await store.forEachAuditEntry { entry in entries.withLock { $0.append(entry) } }
        return entries.withLock { $0 }
    }

    /// Rewrites entries `from...` of a log (and its head) with hashes made by `hash`, as someone with write access to
    /// the database would, after changing entry `from`'s details.
    private func forge(_ location: DatabaseLocation, store: SQLStore, from: Int64, hash: (Int64, AuditEvent, String) -> String) async throws {
        let entries = try await allEntries(store)
        try await store.close()
        try Tamper.dropGuards(location)
        var previous = entries[Int(from) - 2].hash
        for entry in entries where entry.sequence >= from {
            var event = entry.event
            if entry.sequence == from { event = AuditEvent(stored: event.action, actor: event.actor, subject: event.subject, outcome: event.outcome, details: "forged", time: event.time) }
            let value = hash(entry.sequence, event, previous)
            try Tamper.run(location, "UPDATE audit_events SET details = '\(event.details)', prev_hash = '\(previous)', hash = '\(value)' WHERE seq = \(entry.sequence)")
            previous = value
        }
        try Tamper.run(location, "UPDATE audit_head SET hash = '\(previous)' WHERE id = 1")
    }

    @Test("A chain recomputed without the master key's audit key (another key, or the old unkeyed hash) does not verify", arguments: TestBackend.available)
    func forgedWithoutKey(backend: TestBackend) async throws {
        for forger in [
            { (s: Int64, e: AuditEvent, p: String) in AuditChain.hash(key: SymmetricKey(size: .bits256), sequence: s, event: e, previousHash: p) },
            { (s: Int64, e: AuditEvent, p: String) in AuditChain.unkeyedHash(sequence: s, event: e, previousHash: p) },
        ] {
            let location = try backend.freshLocation()
            let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
            for index in 1...5 { try await store.appendAudit(Fixtures.event(details: "step \(index)")) }
            try await forge(location, store: store, from: 3, hash: forger)
            let reopened = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
            guard case .broken(let sequence, let reason) = try await reopened.verifyAuditChain() else {
                Issue.record("a chain forged without the key must not verify")
                try await reopened.close()
                continue
            }
            #expect(sequence == 3)
            #expect(reason.contains("master key"))
            try await reopened.close()
        }
    }

    @Test("An anchored head catches a rewrite by someone who holds the key, and a log cut back before it", arguments: TestBackend.available)
    func anchoredHead(backend: TestBackend) async throws {
        let location = try backend.freshLocation()
        let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        for index in 1...4 { try await store.appendAudit(Fixtures.event(details: "step \(index)")) }
        let head = try #require(try await store.auditHead())
        let anchor = try AuditChain.Anchor("\(head.sequence):\(head.hash)")
        #expect(try await store.verifyAuditChain(anchor: anchor) == .intact(entries: 4))
        try await store.appendAudit(Fixtures.event(details: "step 5"))
        #expect(try await store.verifyAuditChain(anchor: anchor) == .intact(entries: 5), "later entries keep an old anchor valid")
        try await forge(location, store: store, from: 2) { AuditChain.hash(key: Fixtures.auditKey, sequence: $0, event: $1, previousHash: $2) }
        let reopened = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        #expect(try await reopened.verifyAuditChain() == .intact(entries: 5), "with the key, a rewrite verifies on its own")
        guard case .broken(let sequence, let reason) = try await reopened.verifyAuditChain(anchor: anchor) else {
            Issue.record("the anchor must catch the rewrite")
            return
        }
        #expect(sequence == 4)
        #expect(reason.contains("anchored head"))
        #expect(throws: CardDeskError.self) { try AuditChain.Anchor("4:XYZ") }
        try await reopened.close()
    }

    @Test("A log written with the old unkeyed hash is checked, then re-keyed once; a broken one is refused", arguments: TestBackend.available)
    func upgradeFromUnkeyed(backend: TestBackend) async throws {
        for broken in [false, true] {
            let location = try backend.freshLocation()
            let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
            for index in 1...3 { try await store.appendAudit(Fixtures.event(details: "step \(index)")) }
            // As an older CardDesk wrote it: unkeyed hashes, and migration 7 not applied.
            let entries = try await allEntries(store)
            try await store.close()
            try Tamper.dropGuards(location)
            var previous = AuditChain.genesisHash
            for entry in entries {
                let hash = AuditChain.unkeyedHash(sequence: entry.sequence, event: entry.event, previousHash: previous)
                try Tamper.run(location, "UPDATE audit_events SET prev_hash = '\(previous)', hash = '\(hash)' WHERE seq = \(entry.sequence)")
                previous = hash
            }
            try Tamper.run(location, "UPDATE audit_head SET hash = '\(previous)' WHERE id = 1")
            try Tamper.run(location, "DELETE FROM schema_migrations WHERE version = 7")
            if broken { try Tamper.run(location, "UPDATE audit_events SET details = 'edited' WHERE seq = 2") }
            if broken {
                await #expect(throws: CardDeskError.self) {
                    _ = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
                }
                continue
            }
            let upgraded = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
            #expect(try await upgraded.verifyAuditChain() == .intact(entries: 3))
            #expect(try await upgraded.appliedMigrations().contains(7))
            try await upgraded.appendAudit(Fixtures.event(details: "after the upgrade"))
            #expect(try await upgraded.verifyAuditChain() == .intact(entries: 4))
            try await upgraded.close()
            // The append-only guard is back after the upgrade.
            #expect(throws: (any Error).self) { try Tamper.run(location, "UPDATE audit_events SET details = 'x' WHERE seq = 1") }
        }
    }

    @Test("The hash is the documented encoding's, byte for byte (entries already written keep verifying)")
    func knownHash() {
        // Computed apart from this code (Python's hmac and struct): the version, the sequence and the time as 8-byte
        // big-endian numbers, then each field as its 8-byte UTF-8 length and its bytes, under HMAC-SHA256.
        let event = AuditEvent(
            action: .login, actor: "card:CDE2A1C6D7693A82AB", subject: "user:555254600107", outcome: .success,
            details: "session=é ü certificate=6C42", time: Timestamp(millisecondsSince1970: 1_796_092_468_645)
        )
        #expect(AuditChain.hash(key: Fixtures.auditKey, sequence: 42, event: event, previousHash: AuditChain.genesisHash)
            == "03922341e13984f65a8f808338beadbf2270636f0c7808feadf2d691a6f726d5")
        #expect(AuditChain.unkeyedHash(sequence: 42, event: event, previousHash: AuditChain.genesisHash)
            == "1a7a641c7c94716aed2ab81d7e1399476731df6691c880b75e74e3f4d3ab6a76")
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
        let hash = AuditChain.hash(key: Fixtures.auditKey, sequence: 1, event: base, previousHash: AuditChain.genesisHash)
        #expect(hash.count == 64)
        for variant in variants {
            #expect(AuditChain.hash(key: Fixtures.auditKey, sequence: 1, event: variant, previousHash: AuditChain.genesisHash) != hash)
        }
        #expect(AuditChain.hash(key: Fixtures.auditKey, sequence: 2, event: base, previousHash: AuditChain.genesisHash) != hash)
        #expect(AuditChain.hash(key: Fixtures.auditKey, sequence: 1, event: base, previousHash: String(repeating: "1", count: 64)) != hash)
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
