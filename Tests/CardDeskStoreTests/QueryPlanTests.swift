import CardDeskCore
import CardDeskStore
import Foundation
import Logging
import Synchronization
import Testing

/// The reads every sign-in, renewal step and agent check-in makes look a card, a user, a renewal or a session up by
/// its key. SQLite's planner picks an index by rules of thumb (no statistics are gathered), and a condition on a
/// column that many rows share can lead it to walk an index of the whole table: a read of one card's good
/// certificates once went through the index of every good certificate by expiry (half a sign-in's CPU with 20,000
/// certificates stored). Each statement below is the store's own, captured from its query log, and asked for its plan.
@Suite("Query plans of the per-card reads")
struct QueryPlanTests {
    @Test("Every read keyed by a card, user, renewal, session or serial is searched by that key")
    func searchedByKey() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-plans-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("plans.sqlite").path
        let statements = CapturedStatements()
        var logger = Logger(label: "plans") { _ in statements }
        logger.logLevel = .trace
        let store = try await SQLStore.open(.sqlite(path: path), logger: logger, now: Fixtures.now, auditKey: Fixtures.auditKey)
        do {
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))
            try await store.addCard(
                CardRecord(serial: "CD01", userID: user.id, keyAlgorithm: "p256", managementKeySealed: [1], pukSealed: [2], createdAt: Fixtures.now),
                audit: Fixtures.event(.raAction)
            )
            let record = CertificateRecord(
                serial: try SerialNumber(hex: "0A"), profile: .authentication, userID: user.id, subject: "CN=x",
                notBefore: Fixtures.now, notAfter: Fixtures.now.adding(seconds: 86_400), cardSerial: "CD01", der: [0x30, 0x00]
            )
            try await store.recordIssuance(record, audit: Fixtures.event(.certificateIssue))
            statements.clear()
            // What CardInForce, sign-in, renewal steps and check-ins read.
            _ = try await store.card(serial: "CD01")
            _ = try await store.activeRenewal(cardSerial: "CD01")
            _ = try await store.goodCertificates(cardSerial: "CD01")
            _ = try await store.certificates(cardSerial: "CD01")
            _ = try await store.finishedSelfRenewals(cardSerial: "CD01")
            _ = try await store.user(id: user.id)
            _ = try await store.renewal(id: "r1")
            _ = try await store.certificates(renewalID: "r1")
            _ = try await store.certificate(serial: record.serial)
            _ = try await store.session(tokenHash: "00")
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()

        let selects = statements.all.filter { $0.uppercased().hasPrefix("SELECT") }
        #expect(selects.count >= 10)
        for sql in selects {
            let plan = try Self.plan(of: sql, in: path)
            // The key the statement looks its rows up by: the first equality of its WHERE clause.
            guard let key = Self.firstKey(of: sql) else { continue }
            #expect(plan.contains("\(key)=?"), "not searched by \(key): \(sql)\n\(plan)")
        }
    }

    /// `EXPLAIN QUERY PLAN` through the sqlite3 client (parameters left unbound: the plan does not depend on them).
    static func plan(of sql: String, in path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sqlite3", "-readonly", path, "EXPLAIN QUERY PLAN " + sql]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CardDeskError(.internalFailure, "sqlite3 could not plan: \(sql)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// `card_serial` in `… WHERE card_serial = ?1 AND …` (or `u.id` written as `id`).
    static func firstKey(of sql: String) -> String? {
        guard let whereRange = sql.range(of: "WHERE ") else { return nil }
        let condition = sql[whereRange.upperBound...].prefix { $0 != "=" }.trimmingCharacters(in: .whitespaces)
        guard sql[whereRange.upperBound...].dropFirst(condition.count).trimmingCharacters(in: .whitespaces).hasPrefix("= ?") else { return nil }
        return String(condition.split(separator: ".").last ?? Substring(condition))
    }
}

/// The SQL of every statement the store logs (at trace level, as `CARDDESK_BENCH_LOG_LEVEL=trace` shows them).
final class CapturedStatements: LogHandler, @unchecked Sendable {
    private let statements = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard case .string(let sql) = event.metadata?["sql"] else { return }
        statements.withLock { $0.append(sql) }
    }

    var all: [String] { statements.withLock { $0 } }
    func clear() { statements.withLock { $0 = [] } }
}
