import CSQLiteDirect
import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import Synchronization

/// An SQLite connection driven directly through SQLite's C API: the store's writer, and each of its readers.
///
/// Through SQLiteNIO every statement is a turn on a thread pool (and a turn back on an event loop for each row and
/// for the answer) and a fresh `sqlite3_prepare`; a renewal runs some fifty statements. Here a statement runs on the
/// calling thread from a cache of prepared statements (a few microseconds for the usual one-row insert or read).
///
/// Nothing waits for a lock on any thread, because the threads it would hold are few (one per core for requests, two
/// in NIO's blocking-I/O pool that every commit needs): SQLite's busy timeout is zero, and a statement refused because
/// another connection holds the lock it needs (an operator command beside the server holding the write lock; a
/// reader in the rare moment SQLite rebuilds the WAL index) is tried again after a short sleep that holds no thread,
/// until the busy timeout has passed. Statements that wait for the disk by design (`COMMIT`'s flush, `PRAGMA`,
/// `VACUUM`) run on the blocking-I/O thread pool; the rest where they are called.
///
/// A lock guards the connection, so that two statements never interleave; it is held for one statement at a time.
/// Reads (WAL: they never wait for the writer) use their own connections (`DirectSQLiteReaders`) and see committed
/// data only.
final class DirectSQLite: SQLDatabase, Sendable {
    /// One prepared statement and the names of its result columns.
    private final class Statement {
        let handle: OpaquePointer
        let columns: [String]

        init(handle: OpaquePointer) {
            self.handle = handle
            columns = (0..<cd_sqlite_column_count(handle)).map { String(cString: cd_sqlite_column_name(handle, $0)) }
        }
    }

    /// The handle and its statements: touched only under the lock (`connection`), from one thread at a time.
    private struct Connection: @unchecked Sendable {
        var handle: OpaquePointer?
        var statements: [String: Statement] = [:]
    }

    /// The statements kept prepared; the store's SQL is a fixed set, so this is a bound for the unexpected.
    static let statementCacheSize = 256

    private let connection: Mutex<Connection>
    private let path: String
    let logger: Logger
    let eventLoop: any EventLoop
    let queryLogLevel: Logger.Level?
    private let threadPool: NIOThreadPool
    private let encoder = SQLiteDataEncoder()
    private let decoder = SQLiteDataDecoder()

    var dialect: any SQLDialect { SQLiteDialect() }

    /// How long (milliseconds) a statement keeps being tried again while another connection holds the lock it needs.
    let busyTimeout: Int32

    private init(handle: OpaquePointer, path: String, logger: Logger, queryLogLevel: Logger.Level?, busyTimeout: Int32) {
        connection = Mutex(Connection(handle: handle))
        self.path = path
        self.busyTimeout = busyTimeout
        self.logger = logger
        self.queryLogLevel = queryLogLevel
        threadPool = .singleton
        eventLoop = MultiThreadedEventLoopGroup.singleton.any()
    }

    /// Opens the existing database file (on the thread pool: opening touches the disk).
    /// - Parameter busyTimeout: milliseconds a statement keeps being tried again while another connection holds the
    ///   lock it needs (an operator command beside a running server may hold the write lock briefly).
    static func open(
        path: String, logger: Logger, queryLogLevel: Logger.Level? = .trace, busyTimeout: Int32 = 10_000
    ) async throws -> DirectSQLite {
        try await NIOThreadPool.singleton.runIfActive {
            var handle: OpaquePointer?
            let result = cd_sqlite_open(path, &handle)
            guard result == CD_SQLITE_OK, let opened = handle else {
                let message = handle.map { String(cString: cd_sqlite_errmsg($0)) } ?? "out of memory"
                if let handle { _ = cd_sqlite_close(handle) }
                throw DirectSQLiteError(code: result, message: message, sql: "open \(path)")
            }
            // SQLite never waits for a lock itself (see `execute`): a busy statement is tried again without a thread held.
            _ = cd_sqlite_busy_timeout(opened, 0)
            return DirectSQLite(handle: opened, path: path, logger: logger, queryLogLevel: queryLogLevel, busyTimeout: busyTimeout)
        }
    }

    func close() async throws {
        try await threadPool.runIfActive {
            self.connection.withLock { connection in
                for statement in connection.statements.values { _ = cd_sqlite_finalize(statement.handle) }
                connection.statements.removeAll()
                if let handle = connection.handle { _ = cd_sqlite_close(handle) }
                connection.handle = nil
            }
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await self.execute(sql: query, onRow) }
        return promise.futureResult
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try await execute(try bound(query), onRow)
    }

    /// A statement's SQL text and its values as SQLite takes them (logged at `queryLogLevel`): made once per statement,
    /// also when a read is offered to the writer first and then runs on a reader.
    func bound(_ query: any SQLExpression) throws -> (sql: String, binds: [SQLiteData]) {
        let (sql, rawBinds) = serialize(query)
        if let queryLogLevel {
            logger.log(level: queryLogLevel, "Executing query", metadata: ["sql": .string(sql), "binds": .array(rawBinds.map { .string("\($0)") })])
        }
        return (sql, try rawBinds.map { try Self.plain($0) ?? encoder.encode($0) })
    }

    /// The value as SQLite takes it, without SQLiteKit's encoder, for the types the store binds (String, Int, Int64,
    /// Data and their optionals); nil for any other type (the encoder takes it). The encoder's cast to a
    /// protocol existential looked up a conformance at every value; here each type is one metadata comparison.
    static func plain(_ value: any Encodable) -> SQLiteData? {
        func open<T: Encodable>(_ value: T) -> SQLiteData? {
            if T.self == String.self { return .text(unsafeBitCast(value, to: String.self)) }
            if T.self == Int64.self { return .integer(Int(unsafeBitCast(value, to: Int64.self))) }
            if T.self == Int.self { return .integer(unsafeBitCast(value, to: Int.self)) }
            if T.self == Data.self { return .blob(ByteBuffer(bytes: unsafeBitCast(value, to: Data.self))) }
            if T.self == String?.self { return unsafeBitCast(value, to: String?.self).map { .text($0) } ?? .null }
            if T.self == Int64?.self { return unsafeBitCast(value, to: Int64?.self).map { .integer(Int($0)) } ?? .null }
            if T.self == Int?.self { return unsafeBitCast(value, to: Int?.self).map { .integer($0) } ?? .null }
            if T.self == Data?.self { return unsafeBitCast(value, to: Data?.self).map { .blob(ByteBuffer(bytes: $0)) } ?? .null }
            return nil
        }
        return open(value)
    }

    func execute(_ statement: (sql: String, binds: [SQLiteData]), _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let (sql, binds) = statement
        // Another connection holds the lock this statement needs (SQLite's busy timeout is zero: it never waits
        // inside SQLite, where it would hold a thread): nothing was done, so try again a little later, until the
        // busy timeout has passed.
        let deadline = ContinuousClock.now + .milliseconds(Int(busyTimeout))
        var pause = Duration.milliseconds(1)
        while true {
            do {
                if Self.waitsForDisk(sql) {
                    try await threadPool.runIfActive { try self.run(sql, binds, onRow) }
                } else {
                    try run(sql, binds, onRow)
                }
                return
            } catch let error as DirectSQLiteError where error.isBusy && !error.rowsDelivered && ContinuousClock.now < deadline {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(50))
            }
        }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }

    /// Statements that wait for the disk by design (a commit's flush, a checkpoint, settings that write such as the
    /// journal mode), run on the thread pool. `PRAGMA synchronous` only sets how the next commits flush (the group
    /// committer switches it between bookkeeping and durable batches, up to twice a sign-in): it runs in place.
    static func waitsForDisk(_ sql: String) -> Bool {
        let head = sql.utf8.prefix(18)
        if head.starts(with: "PRAGMA".utf8) { return !head.starts(with: "PRAGMA synchronous".utf8) }
        return head.starts(with: "COMMIT".utf8) || head.starts(with: "END".utf8) || head.starts(with: "VACUUM".utf8)
    }

    /// Runs one statement (prepared once, then reused) with its values; hands each result row to `onRow`.
    /// Refused at once (SQLITE_BUSY) where it would wait for another connection's lock.
    private func run(_ sql: String, _ binds: [SQLiteData], _ onRow: @Sendable (any SQLRow) -> Void) throws {
        try connection.withLock { (connection: inout Connection) throws -> Void in
            guard let database = connection.handle else {
                throw DirectSQLiteError(code: 21, message: "the connection is closed", sql: sql)
            }
            try step(try Self.prepared(sql, in: &connection, database: database), database: database, sql: sql, binds, onRow)
        }
    }

    /// Runs a statement that changes nothing here, now, if this connection is free and has no transaction open;
    /// false (nothing run) otherwise. For the store's writer: it made every change there is, so its page cache is
    /// current, where a read connection finds the database changed at nearly every read and rereads each page it needs
    /// (a point read cost it 16–46 µs of CPU, the writer a few). Never waits: the writer's lock may be held through a
    /// commit's flush.
    func readIfIdle(_ statement: (sql: String, binds: [SQLiteData]), _ onRow: @escaping @Sendable (any SQLRow) -> Void) throws -> Bool {
        let (sql, binds) = statement
        guard !Self.waitsForDisk(sql) else { return false }
        let ran: Bool? = try connection.withLockIfAvailable { (connection: inout Connection) throws -> Bool in
            guard let database = connection.handle, cd_sqlite_in_transaction(database) == 0 else { return false }
            let statement = try Self.prepared(sql, in: &connection, database: database)
            guard cd_sqlite_statement_reads_only(statement.handle) != 0 else { return false }
            do {
                try step(statement, database: database, sql: sql, binds, onRow)
            } catch let error as DirectSQLiteError where error.isBusy && !error.rowsDelivered {
                // SQLite rebuilding the WAL index for a moment: a read connection waits for it without a thread.
                return false
            }
            return true
        }
        return ran ?? false
    }

    /// Binds `binds` to `statement` (prepared on `database`, whose lock the caller holds), runs it and hands on its rows.
    private func step(_ statement: Statement, database: OpaquePointer, sql: String, _ binds: [SQLiteData], _ onRow: @Sendable (any SQLRow) -> Void) throws {
        let handle = statement.handle
        defer {
            _ = cd_sqlite_reset(handle)
            _ = cd_sqlite_clear_bindings(handle)
        }
        guard Int(cd_sqlite_bind_parameter_count(handle)) == binds.count else {
            throw DirectSQLiteError(code: 25, message: "the statement takes \(cd_sqlite_bind_parameter_count(handle)) values, \(binds.count) given", sql: sql)
        }
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let result: Int32
            switch value {
            case .integer(let integer):
                result = cd_sqlite_bind_int64(handle, index, Int64(integer))
            case .float(let double):
                result = cd_sqlite_bind_double(handle, index, double)
            case .text(let text) where text.isEmpty:
                result = cd_sqlite_bind_text(handle, index, "", 0)
            case .text(let text):
                var text = text
                result = text.withUTF8 { bytes in
                    bytes.withMemoryRebound(to: CChar.self) { cd_sqlite_bind_text(handle, index, $0.baseAddress!, Int32($0.count)) }
                }
            case .blob(let buffer):
                result = buffer.withUnsafeReadableBytes { cd_sqlite_bind_blob(handle, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32($0.count)) }
            case .null:
                result = cd_sqlite_bind_null(handle, index)
            }
            guard result == CD_SQLITE_OK else { throw DirectSQLiteError(database, result, sql) }
        }
        var delivered = false
        while true {
            let result = cd_sqlite_step(handle)
            if result == CD_SQLITE_DONE { return }
            guard result == CD_SQLITE_ROW else {
                var error = DirectSQLiteError(database, result, sql)
                error.rowsDelivered = delivered
                throw error
            }
            delivered = true
            onRow(DirectSQLiteRow(columns: statement.columns, values: Self.values(of: handle, count: statement.columns.count), decoder: decoder))
        }
    }

    private static func prepared(_ sql: String, in connection: inout Connection, database: OpaquePointer) throws -> Statement {
        if let statement = connection.statements[sql] { return statement }
        if connection.statements.count >= statementCacheSize {
            for statement in connection.statements.values { _ = cd_sqlite_finalize(statement.handle) }
            connection.statements.removeAll()
        }
        var handle: OpaquePointer?
        var used: Int32 = 0
        var text = sql
        let result = text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { cd_sqlite_prepare(database, $0.baseAddress, Int32($0.count), &handle, &used) }
        }
        guard result == CD_SQLITE_OK else { throw DirectSQLiteError(database, result, sql) }
        guard let handle else {
            throw DirectSQLiteError(code: 21, message: "no statement in the text", sql: sql)
        }
        // One statement per call, as SQLiteNIO: a second one in the text would be silently ignored otherwise.
        guard sql.utf8.dropFirst(Int(used)).allSatisfy({ $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: " ") || (9...13).contains($0) }) else {
            _ = cd_sqlite_finalize(handle)
            throw DirectSQLiteError(code: 21, message: "more than one statement in one call", sql: sql)
        }
        let statement = Statement(handle: handle)
        connection.statements[sql] = statement
        return statement
    }

    private static func values(of handle: OpaquePointer, count: Int) -> [SQLiteData] {
        (0..<Int32(count)).map { column in
            switch cd_sqlite_column_type(handle, column) {
            case CD_SQLITE_INTEGER:
                return .integer(.init(cd_sqlite_column_int64(handle, column)))
            case CD_SQLITE_FLOAT:
                return .float(cd_sqlite_column_double(handle, column))
            case CD_SQLITE_TEXT:
                let bytes = Int(cd_sqlite_column_bytes(handle, column))
                guard let text = cd_sqlite_column_text(handle, column) else { return .text("") }
                return .text(String(decoding: UnsafeBufferPointer(start: text, count: bytes), as: UTF8.self))
            case CD_SQLITE_BLOB:
                let bytes = Int(cd_sqlite_column_bytes(handle, column))
                guard bytes > 0, let blob = cd_sqlite_column_blob(handle, column) else { return .blob(ByteBuffer()) }
                return .blob(ByteBuffer(bytes: UnsafeRawBufferPointer(start: blob, count: bytes)))
            default:
                return .null
            }
        }
    }
}

/// Read connections to one SQLite file, at most `maximumConnections`: each read borrows an idle one (or waits, without
/// holding a thread, for one to come back) and runs where it is called; a read the writer can answer at once (free,
/// no transaction open) runs there instead. In WAL mode a read never waits for the
/// writer; the connections refuse writes (`query_only`). The bound matters: a WAL file has five read marks shared by
/// every connection to it (the writer's and another process's too), and a read that finds none free retries and
/// sleeps inside SQLite, in place, where it would hold one of the few cooperative threads.
final class DirectSQLiteReaders: SQLDatabase, Sendable {
    /// About one read per core at a time, and never more than the WAL's read marks leave for the writer and others.
    static let maximumConnections = 3

    private struct Pool {
        var idle: [DirectSQLite] = []
        var opened: [DirectSQLite] = []
        /// Slots taken by connections being opened, so that two reads never both open the last one.
        var opening = 0
        /// Reads waiting for a connection; handed one, or nil to try again (an open failed and its slot is free).
        var waiting: [CheckedContinuation<DirectSQLite?, Never>] = []
    }

    private let pool = Mutex(Pool())
    private let path: String
    let logger: Logger
    let eventLoop: any EventLoop
    let queryLogLevel: Logger.Level?

    var dialect: any SQLDialect { SQLiteDialect() }

    /// The store's writer, which answers a read itself when it is idle (`DirectSQLite.readIfIdle`).
    private let writer: DirectSQLite?

    init(path: String, logger: Logger, queryLogLevel: Logger.Level? = .trace, writer: DirectSQLite? = nil) {
        self.writer = writer
        self.path = path
        self.logger = logger
        self.queryLogLevel = queryLogLevel
        eventLoop = MultiThreadedEventLoopGroup.singleton.any()
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await self.execute(sql: query, onRow) }
        return promise.futureResult
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        var statement: (sql: String, binds: [SQLiteData])?
        if let writer {
            let bound = try writer.bound(query)
            if try writer.readIfIdle(bound, onRow) { return }
            statement = bound
        }
        let connection = try await borrow()
        defer { giveBack(connection) }
        try await connection.execute(try statement ?? connection.bound(query), onRow)
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }

    private enum Turn { case idle(DirectSQLite), open, wait }

    private func borrow() async throws -> DirectSQLite {
        while true {
            let turn: Turn = pool.withLock { pool in
                if let connection = pool.idle.popLast() { return .idle(connection) }
                if pool.opened.count + pool.opening < Self.maximumConnections {
                    pool.opening += 1
                    return .open
                }
                return .wait
            }
            switch turn {
            case .idle(let connection):
                return connection
            case .wait:
                let handed: DirectSQLite? = await withCheckedContinuation { continuation in
                    let now: DirectSQLite? = pool.withLock { pool in
                        if let connection = pool.idle.popLast() { return connection }
                        pool.waiting.append(continuation)
                        return nil
                    }
                    if let now { continuation.resume(returning: now) }
                }
                if let handed { return handed }
            case .open:
                do {
                    // On the thread pool: opening and the first setting may meet a lock (SQLite rebuilding the WAL index).
                    let connection = try await DirectSQLite.open(path: path, logger: logger, queryLogLevel: queryLogLevel, busyTimeout: 2_000)
                    do {
                        try await connection.raw("PRAGMA query_only = ON").run()
                    } catch {
                        try? await connection.close()
                        throw error
                    }
                    pool.withLock { pool in
                        pool.opening -= 1
                        pool.opened.append(connection)
                    }
                    return connection
                } catch {
                    // The slot is free again: a waiting read may try to open it.
                    let waiter = pool.withLock { pool in
                        pool.opening -= 1
                        return pool.waiting.isEmpty ? nil : pool.waiting.removeFirst()
                    }
                    waiter?.resume(returning: nil)
                    throw error
                }
            }
        }
    }

    private func giveBack(_ connection: DirectSQLite) {
        let waiter: CheckedContinuation<DirectSQLite?, Never>? = pool.withLock { pool in
            guard !pool.waiting.isEmpty else {
                pool.idle.append(connection)
                return nil
            }
            return pool.waiting.removeFirst()
        }
        waiter?.resume(returning: connection)
    }

    func close() async throws {
        for connection in pool.withLock({ $0.opened }) { try await connection.close() }
    }
}

/// A result row (of the writer or a reader), decoded like SQLiteKit's rows.
private struct DirectSQLiteRow: SQLRow {
    let columns: [String]
    let values: [SQLiteData]
    let decoder: SQLiteDataDecoder

    var allColumns: [String] { columns }

    func contains(column: String) -> Bool { columns.contains(column) }

    func decodeNil(column: String) throws -> Bool {
        guard let index = columns.firstIndex(of: column) else { return true }
        return values[index] == .null
    }

    /// Text as String, integers as Int64 or Int, blobs as Data, NULL as an optional's nil, handed over as they are
    /// (SQLiteNIO's generic decoder went through Decodable for every column: a few per cent of a sign-in); anything
    /// else goes to that decoder, which converts or refuses it as before. The wanted type is compared by identity with
    /// types made once, and nothing here is `Optional<D>`: either made the runtime look up generic metadata in its
    /// table at every column read.
    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let index = columns.firstIndex(of: column) else {
            throw DecodingError.keyNotFound(DirectSQLiteColumn(column), .init(codingPath: [], debugDescription: "No column \(column) in the result"))
        }
        let value = values[index]
        let wanted = ObjectIdentifier(D.self)
        let plain = PlainTypes.all
        switch value {
        case .text(let text):
            if wanted == plain.string { return unsafeBitCast(text, to: D.self) }
            if wanted == plain.optionalString { return unsafeBitCast(String?.some(text), to: D.self) }
        case .integer(let number):
            if wanted == plain.int64 { return unsafeBitCast(Int64(number), to: D.self) }
            if wanted == plain.optionalInt64 { return unsafeBitCast(Int64?.some(Int64(number)), to: D.self) }
            if wanted == plain.int { return unsafeBitCast(number, to: D.self) }
            if wanted == plain.optionalInt { return unsafeBitCast(Int?.some(number), to: D.self) }
        case .blob(let buffer):
            if wanted == plain.data { return unsafeBitCast(Data(buffer.readableBytesView), to: D.self) }
            if wanted == plain.optionalData { return unsafeBitCast(Data?.some(Data(buffer.readableBytesView)), to: D.self) }
        case .null:
            if wanted == plain.optionalString { return unsafeBitCast(String?.none, to: D.self) }
            if wanted == plain.optionalInt64 { return unsafeBitCast(Int64?.none, to: D.self) }
            if wanted == plain.optionalInt { return unsafeBitCast(Int?.none, to: D.self) }
            if wanted == plain.optionalData { return unsafeBitCast(Data?.none, to: D.self) }
        case .float:
            break
        }
        return try decoder.decode(D.self, from: value)
    }
}

/// The types `DirectSQLiteRow` hands over as they are, by identity (made once).
private struct PlainTypes {
    static let all = PlainTypes()
    let string = ObjectIdentifier(String.self)
    let optionalString = ObjectIdentifier(String?.self)
    let int64 = ObjectIdentifier(Int64.self)
    let optionalInt64 = ObjectIdentifier(Int64?.self)
    let int = ObjectIdentifier(Int.self)
    let optionalInt = ObjectIdentifier(Int?.self)
    let data = ObjectIdentifier(Data.self)
    let optionalData = ObjectIdentifier(Data?.self)
}

private struct DirectSQLiteColumn: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// SQLite's refusal of a statement, with its code and message.
struct DirectSQLiteError: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    let sql: String
    /// Whether the statement had handed on rows before it failed (it cannot then simply be run again).
    var rowsDelivered = false

    init(code: Int32, message: String, sql: String) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    init(_ database: OpaquePointer, _ code: Int32, _ sql: String) {
        self.init(code: cd_sqlite_extended_errcode(database), message: String(cString: cd_sqlite_errmsg(database)), sql: sql)
    }

    /// Another connection holds the lock the statement needed (SQLITE_BUSY and its extended codes).
    var isBusy: Bool { code & 0xFF == CD_SQLITE_BUSY }

    var description: String { "SQLite error \(code): \(message) (in: \(sql.prefix(200)))" }
}
