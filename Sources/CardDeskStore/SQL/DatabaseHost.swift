@preconcurrency import AsyncKit
import CardDeskCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit
import Synchronization

/// Owns the connections to one database and hands out reads and transactions.
///
/// Every write transaction goes through one group committer (`GroupCommitter`): transactions that arrive while a
/// commit is being flushed share the next commit, one after another on one writer connection.
/// SQLite: the writer connection (WAL, `synchronous=FULL` for a durable commit); reads use connections of their own,
/// or the writer when it is free with no transaction open, and never see uncommitted data; all of them through
/// SQLite's C API with prepared statements kept (`DirectSQLite`).
/// PostgreSQL: a connection pool; each batch holds one pooled connection, reads take any.
/// (On PostgreSQL every transaction locks the audit chain's head, so commits are serial across instances anyway:
/// sharing one flush among many transactions is what lets them scale.)
final class DatabaseHost: Sendable {
    enum Flavour: Sendable { case sqlite, postgres }

    let flavour: Flavour
    private let reader: any SQLDatabase
    private let committer: GroupCommitter
    private let closeAll: @Sendable () async throws -> Void

    private init(
        flavour: Flavour,
        reader: any SQLDatabase,
        committer: GroupCommitter,
        close: @escaping @Sendable () async throws -> Void
    ) {
        self.flavour = flavour
        self.reader = reader
        self.committer = committer
        self.closeAll = close
    }

    /// How many transactions were committed, in how many commits (flushes), since the store was opened.
    var commitStatistics: (transactions: Int, commits: Int) { committer.statistics }

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
        // The writer: SQLite's C API directly, with prepared statements kept (see DirectSQLite).
        let writer: DirectSQLite
        do {
            writer = try await DirectSQLite.open(path: path, logger: logger)
            do {
                try await writer.raw("PRAGMA foreign_keys = ON").run()
                try await writer.raw("PRAGMA synchronous = FULL").run()
                try await writer.raw("PRAGMA journal_mode = WAL").run()
                // Probe that the file really is an SQLite database (a corrupt file fails here, not in the middle of work).
                try await writer.raw("SELECT count(*) FROM sqlite_master").run()
            } catch {
                try? await writer.close()
                throw error
            }
        } catch {
            throw CardDeskError(.storageUnavailable, "Cannot open the SQLite database \(path): \(String(describing: error)). Check that the file is a CardDesk database and that its folder is writable.")
        }
        let reader = DirectSQLiteReaders(path: path, logger: logger, writer: writer)
        // The connection's `synchronous` setting as last set (FULL when opened).
        let synchronousFull = Atomic<Bool>(true)
        let committer = GroupCommitter(
            begin: "BEGIN IMMEDIATE",
            prepare: { durable in
                // A batch of bookkeeping only does not wait for the disk (WAL keeps it consistent); a durable
                // batch after it still flushes everything before it.
                guard synchronousFull.exchange(durable, ordering: .relaxed) != durable else { return nil }
                return durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"
            },
            // One writer: batches run one at a time, so the connection is never shared.
            connection: { body in try await body(writer) }
        )
        return DatabaseHost(
            flavour: .sqlite,
            reader: reader,
            committer: committer,
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
        let committer = GroupCommitter(
            begin: "BEGIN",
            setup: { durable in durable ? nil : "SET LOCAL synchronous_commit = off" },
            connection: { body in try await database.withSession { try await body($0) } }
        )
        return DatabaseHost(flavour: .postgres, reader: database, committer: committer, close: { try await pool.shutdownAsync() })
    }

    /// Runs a read outside any transaction.
    func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await body(reader)
    }

    /// Runs `body` inside one transaction: committed when it returns (answered only once the commit is durable),
    /// rolled back when it throws. Runs in a batch with whatever other transactions are waiting (`GroupCommitter`).
    ///
    /// `durable: false` is for bookkeeping that may be lost in a power cut (rate-limit counters, purges): a batch of
    /// such transactions only does not wait for the disk (SQLite `synchronous = NORMAL`, which WAL keeps consistent;
    /// PostgreSQL `synchronous_commit = off`). It never weakens another transaction: a batch with one durable
    /// transaction is durable, and later durable commits flush everything before them.
    func transaction<R: Sendable>(durable: Bool = true, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await committer.transaction(durable: durable, body)
    }

    func close() async throws {
        try await closeAll()
    }
}
