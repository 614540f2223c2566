@preconcurrency import AsyncKit
import CardDeskCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit

/// Owns the connections to one database and hands out reads and transactions.
///
/// SQLite allows one writer at a time, so its transactions are serialised here (one writer connection, WAL,
/// `synchronous=FULL` for a durable commit); reads use a second connection and never see uncommitted data.
/// PostgreSQL uses a connection pool; each transaction holds one pooled connection for its duration.
final class DatabaseHost: Sendable {
    enum Flavour: Sendable { case sqlite, postgres }

    let flavour: Flavour
    private let reader: any SQLDatabase
    private let writer: any SQLDatabase
    private let writeLock: AsyncSerialLock?
    private let closeAll: @Sendable () async throws -> Void

    private init(
        flavour: Flavour,
        reader: any SQLDatabase,
        writer: any SQLDatabase,
        writeLock: AsyncSerialLock?,
        close: @escaping @Sendable () async throws -> Void
    ) {
        self.flavour = flavour
        self.reader = reader
        self.writer = writer
        self.writeLock = writeLock
        self.closeAll = close
    }

    static func open(_ location: DatabaseLocation, logger: Logger) async throws -> DatabaseHost {
        switch location {
        case .sqlite(let path):
            return try await openSQLite(path: path, logger: logger)
        case .postgres(let url):
            return try await openPostgres(url: url, logger: logger)
        }
    }

    private static func openSQLite(path: String, logger: Logger) async throws -> DatabaseHost {
        // Card holder records live here: readable by the server's user only.
        if !FileManager.default.fileExists(atPath: path) {
            try SecretFile.createNew([], at: path)
        }
        func connect() async throws -> SQLiteConnection {
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: .singleton, logger: logger,
                on: MultiThreadedEventLoopGroup.singleton.any()
            )
            let sql = connection.sql(queryLogLevel: .trace)
            // Another process (an operator command beside a running server) may hold the write lock briefly.
            try await sql.raw("PRAGMA busy_timeout = 10000").run()
            try await sql.raw("PRAGMA foreign_keys = ON").run()
            try await sql.raw("PRAGMA synchronous = FULL").run()
            return connection
        }
        let writer: SQLiteConnection
        do {
            writer = try await connect()
            try await writer.sql().raw("PRAGMA journal_mode = WAL").run()
            // Probe that the file really is an SQLite database (a corrupt file fails here, not in the middle of work).
            try await writer.sql().raw("SELECT count(*) FROM sqlite_master").run()
        } catch {
            throw CardDeskError(.storageUnavailable, "Cannot open the SQLite database \(path): \(String(describing: error)). Check that the file is a CardDesk database and that its folder is writable.")
        }
        let reader = try await connect()
        return DatabaseHost(
            flavour: .sqlite,
            reader: reader.sql(queryLogLevel: .trace),
            writer: writer.sql(queryLogLevel: .trace),
            writeLock: AsyncSerialLock(),
            close: {
                try await reader.close()
                try await writer.close()
            }
        )
    }

    private static func openPostgres(url: String, logger: Logger) async throws -> DatabaseHost {
        let configuration: SQLPostgresConfiguration
        do {
            configuration = try SQLPostgresConfiguration(url: url)
        } catch {
            throw CardDeskError(.configuration, "The PostgreSQL URL \(DatabaseLocation.redacted(url)) is not valid: \(error).")
        }
        let pool = EventLoopGroupConnectionPool(
            source: PostgresConnectionSource(sqlConfiguration: configuration),
            maxConnectionsPerEventLoop: 8,
            requestTimeout: .seconds(30),
            logger: logger,
            on: MultiThreadedEventLoopGroup.singleton
        )
        let database = pool.database(logger: logger).sql(queryLogLevel: .trace)
        do {
            try await database.raw("SELECT 1").run()
        } catch {
            try? await pool.shutdownAsync()
            throw CardDeskError(.storageUnavailable, "Cannot reach PostgreSQL at \(DatabaseLocation.redacted(url)): \(String(reflecting: error)). Check that the server is running and the URL is right.")
        }
        return DatabaseHost(
            flavour: .postgres, reader: database, writer: database, writeLock: nil,
            close: { try await pool.shutdownAsync() }
        )
    }

    /// Runs a read outside any transaction.
    func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await body(reader)
    }

    /// Runs `body` inside one transaction: committed when it returns, rolled back when it throws.
    ///
    /// `durable: false` is for bookkeeping that may be lost in a power cut (rate-limit counters, purges): the commit
    /// does not wait for the disk (SQLite `synchronous = NORMAL` for that commit, which WAL keeps consistent; PostgreSQL `synchronous_commit = off`).
    /// It never weakens another transaction: later durable commits still flush everything before them.
    func transaction<R: Sendable>(durable: Bool = true, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        if let writeLock {
            return try await writeLock.withLock {
                guard !durable else { return try await Self.runTransaction(on: self.writer, begin: "BEGIN IMMEDIATE", body) }
                try await self.writer.raw("PRAGMA synchronous = NORMAL").run()
                do {
                    let result = try await Self.runTransaction(on: self.writer, begin: "BEGIN IMMEDIATE", body)
                    try await self.writer.raw("PRAGMA synchronous = FULL").run()
                    return result
                } catch {
                    try? await self.writer.raw("PRAGMA synchronous = FULL").run()
                    throw error
                }
            }
        }
        return try await writer.withSession { session in
            try await Self.runTransaction(on: session, begin: "BEGIN", then: durable ? nil : "SET LOCAL synchronous_commit = off", body)
        }
    }

    private static func runTransaction<R: Sendable>(
        on database: any SQLDatabase, begin: String, then setup: String? = nil,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> R
    ) async throws -> R {
        try await database.raw(SQLQueryString(begin)).run()
        do {
            if let setup { try await database.raw(SQLQueryString(setup)).run() }
            let result = try await body(database)
            try await database.raw("COMMIT").run()
            return result
        } catch {
            try? await database.raw("ROLLBACK").run()
            throw error
        }
    }

    func close() async throws {
        try await closeAll()
    }
}

/// A FIFO lock for async code: one holder at a time, waiters resumed in arrival order.
actor AsyncSerialLock {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !held {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            held = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    nonisolated func withLock<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}
