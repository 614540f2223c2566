@testable import CardDeskStore
import CSQLiteDirect
import Foundation
import Logging
import NIOCore
import SQLKit
import SQLiteKit
import Testing

/// The SQLite writer that runs every write transaction through SQLite's C API with prepared statements kept.
@Suite("SQLite writer")
struct DirectSQLiteTests {
    /// A fresh database file with one table, the writer on it, and a SQLiteNIO connection to read it back.
    struct Fixture {
        let path: String
        let writer: DirectSQLite

        init() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-writer-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            path = folder.appendingPathComponent("writer.sqlite").path
            FileManager.default.createFile(atPath: path, contents: nil)
            writer = try await DirectSQLite.open(path: path, logger: Logger(label: "test"))
            try await writer.raw("PRAGMA journal_mode = WAL").run()
            try await writer.raw("CREATE TABLE t (id INTEGER PRIMARY KEY, i BIGINT, f REAL, s TEXT, b BLOB)").run()
        }

        /// The rows as another connection (SQLiteNIO's) sees them: what was committed.
        func committed() async throws -> [any SQLRow] {
            let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: Logger(label: "test"))
            defer { Task { try? await connection.close() } }
            return try await connection.sql().raw("SELECT * FROM t ORDER BY id").all()
        }
    }

    @Test("Integers, reals, text (any Unicode, control characters), blobs (empty too) and NULL are stored and read back exactly, on reused statements")
    func valuesRoundTrip() async throws {
        let fixture = try await Fixture()
        let values: [(Int64, Double, String?, Data?)] = [
            (Int64.max, 1.5, "Zoë 🪪 ĉ", Data([0, 1, 2, 255])),
            (Int64.min, -0.25, "tab\tnewline\n", Data()),
            (0, 0, nil, nil),
            (42, .pi, "", Data(repeating: 0x5A, count: 100_000)),
        ]
        // The same SQL text each time: one prepared statement, bound afresh.
        for (id, value) in values.enumerated() {
            try await fixture.writer.raw("INSERT INTO t (id, i, f, s, b) VALUES (\(bind: id), \(bind: value.0), \(bind: value.1), \(bind: value.2), \(bind: value.3))").run()
        }
        for rows in [try await fixture.writer.raw("SELECT * FROM t ORDER BY id").all(), try await fixture.committed()] {
            #expect(rows.count == values.count)
            for (row, value) in zip(rows, values) {
                #expect(try row.decode(column: "i", as: Int64.self) == value.0)
                #expect(try row.decode(column: "f", as: Double.self) == value.1)
                #expect(try row.decode(column: "s", as: String?.self) == value.2)
                // SQLite keeps an empty blob as an empty blob, never as NULL.
                #expect(try row.decode(column: "b", as: Data?.self) == value.3)
            }
        }
        // Every column read as every type the store reads gives what SQLiteNIO's decoder gives (DirectSQLite reads
        // the common ones without it): the same value, or an error where the decoder refuses.
        let ours = try await fixture.writer.raw("SELECT * FROM t ORDER BY id").all(), theirs = try await fixture.committed()
        func same<T: Decodable & Equatable>(_ type: T.Type, _ column: String, _ a: any SQLRow, _ b: any SQLRow) -> Bool {
            switch (Result { try a.decode(column: column, as: T.self) }, Result { try b.decode(column: column, as: T.self) }) {
            case (.success(let x), .success(let y)): x == y
            case (.failure, .failure): true
            default: false
            }
        }
        for (a, b) in zip(ours, theirs) {
            for column in ["id", "i", "f", "s", "b"] {
                #expect(same(String.self, column, a, b) && same(String?.self, column, a, b), "\(column) as text")
                #expect(same(Int64.self, column, a, b) && same(Int64?.self, column, a, b), "\(column) as Int64")
                #expect(same(Int.self, column, a, b) && same(Int?.self, column, a, b), "\(column) as Int")
                #expect(same(Data.self, column, a, b) && same(Data?.self, column, a, b), "\(column) as Data")
                #expect(same(Double.self, column, a, b) && same(Bool.self, column, a, b), "\(column) as Double, Bool")
            }
        }
        // A reused statement with fewer values than it takes is refused, not run with the last ones.
        await #expect(throws: DirectSQLiteError.self) {
            try await fixture.writer.raw("SELECT * FROM t WHERE id = \(bind: 1) AND i = \(bind: 2)").run()
            try await fixture.writer.execute(sql: SQLRaw("SELECT * FROM t WHERE id = ? AND i = ?", [1])) { _ in }
        }
        try await fixture.writer.close()
    }

    @Test("Values are bound as SQLiteKit's encoder binds them, for every type the store binds and any other")
    func valuesBoundAsTheEncoderBindsThem() throws {
        struct Other: Encodable, Sendable { let name: String }
        let values: [any Encodable & Sendable] = [
            "", "Zoë 🪪 ĉ", "tab\tnewline\n", Int64.max, Int64.min, Int64(0), Int.max, Int.min, -1, Data(), Data([0, 1, 255]),
            Data(repeating: 0x5A, count: 10_000),
            String?.none, String?.some("x"), Int64?.none, Int64?.some(7), Int?.none, Int?.some(-7), Data?.none, Data?.some(Data([9])),
            // Not among the store's types: left to the encoder.
            true, false, 0.0, -0.25, Double.pi,
            Int32(5), UInt8(200), Float(1.5), Bool?.some(true), [UInt8]([1, 2]), Other(name: "n"), Double?.some(2.5),
        ]
        let encoder = SQLiteDataEncoder()
        for value in values {
            let expected = try encoder.encode(value)
            #expect((DirectSQLite.plain(value) ?? expected) == expected, "\(type(of: value)) \(value)")
        }
        // The fast path answers for the store's types (nothing left to the encoder there) and for no other.
        #expect(values.prefix(20).allSatisfy { DirectSQLite.plain($0) != nil })
        #expect(values.dropFirst(20).allSatisfy { DirectSQLite.plain($0) == nil })
    }

    @Test("A kept statement whose plan could depend on its values (ORDER BY, a range, a LIMIT) is not compiled again when run with other values")
    func keptStatementsAreNotRecompiled() async throws {
        // Through the C calls DirectSQLite makes: opened by `cd_sqlite_open`, each run bound, stepped, reset and its
        // values cleared. Without the query planner stability guarantee SQLite marks such a statement to be compiled
        // again at the next run once its values are cleared: a renewal's reads were parsed and planned again nearly
        // every time (a fifth of the server's SQL time).
        let fixture = try await Fixture()
        try await fixture.writer.raw("CREATE TABLE renewals (id TEXT PRIMARY KEY, card TEXT, status TEXT, created BIGINT)").run()
        try await fixture.writer.raw("CREATE INDEX renewals_by_card ON renewals (card, status)").run()
        for id in 0..<50 {
            try await fixture.writer.raw("INSERT INTO renewals VALUES (\(bind: "r\(id)"), \(bind: "card\(id % 5)"), \(bind: id % 3 == 0 ? "active" : "done"), \(bind: id))").run()
        }
        var database: OpaquePointer?
        #expect(cd_sqlite_open(fixture.path, &database) == CD_SQLITE_OK)
        let handle = try #require(database)
        defer { _ = cd_sqlite_close(handle) }
        let queries = [
            "SELECT * FROM renewals WHERE card = ?1 AND status = 'active' ORDER BY created DESC",
            "SELECT id FROM renewals WHERE created > ?1 ORDER BY created LIMIT ?2",
            "SELECT count(*) AS n FROM renewals WHERE card = ?1 AND created > COALESCE((SELECT max(created) FROM renewals WHERE card = ?1 AND status = 'done'), -1)",
        ]
        for sql in queries {
            var statement: OpaquePointer?
            var used: Int32 = 0
            #expect(cd_sqlite_prepare(handle, sql, Int32(sql.utf8.count), &statement, &used) == CD_SQLITE_OK)
            let prepared = try #require(statement)
            defer { _ = cd_sqlite_finalize(prepared) }
            var rows = 0
            for run in 0..<20 {
                let card = "card\(run % 5)"
                if sql.contains("LIMIT") {
                    _ = cd_sqlite_bind_int64(prepared, 1, Int64(run))
                    _ = cd_sqlite_bind_int64(prepared, 2, Int64(run % 4))
                } else {
                    _ = card.withCString { cd_sqlite_bind_text(prepared, 1, $0, Int32(card.utf8.count)) }
                }
                while cd_sqlite_step(prepared) == CD_SQLITE_ROW { rows += 1 }
                _ = cd_sqlite_reset(prepared)
                _ = cd_sqlite_clear_bindings(prepared)
            }
            #expect(rows > 0, "\(sql) found nothing")
            #expect(cd_sqlite_recompilations(prepared) == 0, "\(sql) was compiled again \(cd_sqlite_recompilations(prepared)) times in 20 runs")
        }
        try await fixture.writer.close()
    }

    @Test("A refused statement (a duplicate key) throws SQLite's message and leaves its prepared statement usable")
    func refusalLeavesStatementUsable() async throws {
        let fixture = try await Fixture()
        try await fixture.writer.raw("INSERT INTO t (id, s) VALUES (\(bind: 1), \(bind: "first"))").run()
        do {
            try await fixture.writer.raw("INSERT INTO t (id, s) VALUES (\(bind: 1), \(bind: "again"))").run()
            Issue.record("a duplicate key was accepted")
        } catch let error as DirectSQLiteError {
            #expect(error.description.contains("UNIQUE constraint failed: t.id"), "\(error)")
        }
        try await fixture.writer.raw("INSERT INTO t (id, s) VALUES (\(bind: 2), \(bind: "second"))").run()
        #expect(try await fixture.committed().map { try $0.decode(column: "s", as: String.self) } == ["first", "second"])
        try await fixture.writer.close()
    }

    @Test("Two statements in one text are refused before either runs")
    func oneStatementPerCall() async throws {
        let fixture = try await Fixture()
        await #expect(throws: DirectSQLiteError.self) {
            try await fixture.writer.raw("INSERT INTO t (id) VALUES (1); DROP TABLE t").run()
        }
        #expect(try await fixture.committed().isEmpty)
        // A trailing semicolon alone is one statement.
        try await fixture.writer.raw("INSERT INTO t (id) VALUES (7);\n").run()
        #expect(try await fixture.committed().count == 1)
        try await fixture.writer.close()
    }

    @Test("200 tasks writing at once through one writer: every row is there, none twice")
    func concurrentCallers() async throws {
        let fixture = try await Fixture()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in 0..<200 {
                group.addTask {
                    try await fixture.writer.raw("INSERT INTO t (id, s) VALUES (\(bind: id), \(bind: "row \(id)"))").run()
                    _ = try await fixture.writer.raw("SELECT s FROM t WHERE id = \(bind: id)").first()
                }
            }
            try await group.waitForAll()
        }
        let rows = try await fixture.committed()
        #expect(try rows.map { try $0.decode(column: "id", as: Int.self) } == Array(0..<200))
        try await fixture.writer.close()
    }

    @Test("While another process holds the write lock, writers (as many as there are cores) wait for it, reads go on and see nothing uncommitted, then every writer commits")
    func waitingHoldsNoCooperativeThread() async throws {
        let fixture = try await Fixture()
        // Another process holds the write lock (the sqlite3 shell, in a transaction, until told to commit).
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        shell.arguments = ["sqlite3", fixture.path]
        let input = Pipe()
        shell.standardInput = input
        try shell.run()
        input.fileHandleForWriting.write(Data("PRAGMA busy_timeout = 5000;\nBEGIN IMMEDIATE;\nINSERT INTO t (id, s) VALUES (1, 'other');\n".utf8))
        // Wait until the shell holds the lock: a write here is refused at once while it does.
        let probe = try await DirectSQLite.open(path: fixture.path, logger: Logger(label: "test"), busyTimeout: 0)
        var held = false
        for _ in 0..<100 where !held {
            do {
                try await probe.raw("BEGIN IMMEDIATE").run()
                try await probe.raw("ROLLBACK").run()
                try await Task.sleep(for: .milliseconds(20))
            } catch let error as DirectSQLiteError where error.isBusy {
                held = true
            }
        }
        try #require(held, "the sqlite3 shell took the write lock")
        // As many writers as the cooperative pool has threads, each waiting for the lock (up to 10 s) on the thread
        // pool; the shell lets go only after the read below has answered. (Were they to wait where they were called,
        // Linux's dispatch would add threads after a while: that is slower, not stuck, so this test cannot tell.)
        let writers = max(2, ProcessInfo.processInfo.activeProcessorCount)
        let writing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<writers {
                    group.addTask {
                        let writer = try await DirectSQLite.open(path: fixture.path, logger: Logger(label: "test"))
                        try await writer.raw("BEGIN IMMEDIATE").run()
                        try await writer.raw("INSERT INTO t (id, s) VALUES (\(bind: 10 + index), 'writer')").run()
                        try await writer.raw("COMMIT").run()
                        try await writer.close()
                    }
                }
                try await group.waitForAll()
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        // Reads never wait for a writer (WAL): one runs, and sees nothing uncommitted, while the lock is held.
        let readers = DirectSQLiteReaders(path: fixture.path, logger: Logger(label: "test"))
        #expect(try await readers.raw("SELECT count(*) AS n FROM t").first()?.decode(column: "n", as: Int.self) == 0)
        await #expect(throws: DirectSQLiteError.self, "readers refuse writes") {
            try await readers.raw("INSERT INTO t (id) VALUES (3)").run()
        }
        input.fileHandleForWriting.write(Data("COMMIT;\n".utf8))
        try input.fileHandleForWriting.close()
        shell.waitUntilExit()
        try await writing.value
        #expect(try await fixture.committed().map { try $0.decode(column: "s", as: String.self) } == ["other"] + Array(repeating: "writer", count: writers))
        try await readers.close()
        try await probe.close()
        try await fixture.writer.close()
    }

    @Test("Statements that wait for the disk by design (COMMIT's flush, settings that write) run off the calling thread; the rest, and the flush setting, are tried in place")
    func diskStatementsAreRecognised() {
        #expect(DirectSQLite.waitsForDisk("COMMIT"))
        #expect(DirectSQLite.waitsForDisk("END"))
        #expect(DirectSQLite.waitsForDisk("VACUUM"))
        #expect(DirectSQLite.waitsForDisk("PRAGMA journal_mode = WAL"))
        #expect(DirectSQLite.waitsForDisk("PRAGMA wal_checkpoint(TRUNCATE)"))
        #expect(!DirectSQLite.waitsForDisk("PRAGMA synchronous = FULL"))
        #expect(!DirectSQLite.waitsForDisk("PRAGMA synchronous = NORMAL"))
        #expect(!DirectSQLite.waitsForDisk("BEGIN IMMEDIATE"))
        #expect(!DirectSQLite.waitsForDisk("INSERT INTO t (id) VALUES (?)"))
        #expect(!DirectSQLite.waitsForDisk("SELECT seq, hash FROM audit_head WHERE id = 1"))
    }
}

@Suite("SQLite readers")
struct DirectSQLiteReadersTests {
    @Test("100 reads at once through the bounded read connections all answer, each with its own row")
    func manyReadsAtOnce() async throws {
        let fixture = try await DirectSQLiteTests.Fixture()
        for id in 0..<100 {
            try await fixture.writer.raw("INSERT INTO t (id, s) VALUES (\(bind: id), \(bind: "row \(id)"))").run()
        }
        let readers = DirectSQLiteReaders(path: fixture.path, logger: Logger(label: "test"))
        let answers = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for id in 0..<100 {
                group.addTask { (id, try await readers.raw("SELECT s FROM t WHERE id = \(bind: id)").first()?.decode(column: "s", as: String.self)) }
            }
            return try await group.reduce(into: [Int: String?]()) { $0[$1.0] = $1.1 }
        }
        #expect(answers.count == 100)
        #expect(answers.allSatisfy { $0.value == "row \($0.key)" })
        try await readers.close()
        try await fixture.writer.close()
    }

    @Test("A read goes to the writer only while it is free with no transaction open: it never sees uncommitted rows, and writes sent as reads are refused")
    func readsOnTheIdleWriter() async throws {
        let fixture = try await DirectSQLiteTests.Fixture()
        let readers = DirectSQLiteReaders(path: fixture.path, logger: Logger(label: "test"), writer: fixture.writer)
        // A table only the writer's connection has (TEMP): reading it shows which connection answered.
        try await fixture.writer.raw("CREATE TEMP TABLE writer_only (x INTEGER)").run()
        try await fixture.writer.raw("INSERT INTO t (id, s) VALUES (1, 'committed')").run()
        #expect(try await readers.raw("SELECT count(*) AS n FROM temp.writer_only").first()?.decode(column: "n", as: Int.self) == 0)

        // A transaction open on the writer (a group-commit batch between its statements): reads go to a read
        // connection, which sees only what was committed.
        try await fixture.writer.raw("BEGIN IMMEDIATE").run()
        try await fixture.writer.raw("INSERT INTO t (id, s) VALUES (2, 'not yet')").run()
        #expect(try await readers.raw("SELECT s FROM t ORDER BY id").all().map { try $0.decode(column: "s", as: String.self) } == ["committed"])
        await #expect(throws: DirectSQLiteError.self) { try await readers.raw("SELECT count(*) AS n FROM temp.writer_only").first() }
        try await fixture.writer.raw("COMMIT").run()
        #expect(try await readers.raw("SELECT s FROM t ORDER BY id").all().map { try $0.decode(column: "s", as: String.self) } == ["committed", "not yet"])

        // A statement that would change something is never run on the idle writer (outside any batch, it would
        // commit on its own): it goes to a read connection, which refuses it.
        await #expect(throws: DirectSQLiteError.self) { try await readers.raw("INSERT INTO t (id, s) VALUES (3, 'sneaked')").run() }
        await #expect(throws: DirectSQLiteError.self) { try await readers.raw("DELETE FROM t").run() }
        #expect(try await fixture.committed().count == 2)
        try await readers.close()
        try await fixture.writer.close()
    }
}
