import CardDeskCore
import Logging
import NIOCore
import SQLKit
import Synchronization

/// The connection a group-commit batch runs on, and what its transactions share until the batch commits: the head
/// of the audit chain.
///
/// Every audit entry extends the chain from the head. Read and written for each entry, the head cost two statements
/// per entry (a renewal writes eleven entries); within a batch, where transactions run one after another on one
/// connection holding the write lock (SQLite) or the head row's lock (PostgreSQL, `FOR UPDATE`), the head is read once,
/// kept here as entries are appended, and written once before COMMIT. A batch that is rolled back is run again on a
/// new `BatchDatabase`, so nothing kept here outlives the transaction it was read in.
final class BatchDatabase: SQLDatabase {
    let base: any SQLDatabase
    /// The head as this batch's appends have left it (nil: not read yet), and whether it differs from the stored one.
    private let head = Mutex<(sequence: Int64, hash: String, moved: Bool)?>(nil)

    init(_ base: any SQLDatabase) {
        self.base = base
    }

    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { base.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        base.execute(sql: query, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try await base.execute(sql: query, onRow)
    }

    /// The audit chain's head for the next append: as this batch left it, or read from the database.
    /// - Parameter locked: lock the head row (PostgreSQL: concurrent transactions of other instances then append one
    ///   after another; SQLite's transaction already holds the database's write lock).
    func auditHead(locked: Bool) async throws -> (sequence: Int64, hash: String) {
        if let kept = head.withLock({ $0 }) { return (kept.sequence, kept.hash) }
        guard let row = try await base.raw(SQLQueryString("SELECT seq, hash FROM audit_head WHERE id = 1" + (locked ? " FOR UPDATE" : ""))).first() else {
            throw CardDeskError(.storageUnavailable, "The audit log's head row is missing: the database was changed by hand. Run `carddesk-server audit verify`.")
        }
        let stored = (sequence: try row.decode(column: "seq", as: Int64.self), hash: try row.decode(column: "hash", as: String.self))
        head.withLock { $0 = (stored.sequence, stored.hash, false) }
        return stored
    }

    /// Records an append: the head the batch writes before it commits.
    func moveAuditHead(to sequence: Int64, hash: String) {
        head.withLock { $0 = (sequence, hash, true) }
    }

    /// Writes what the batch's transactions share (the audit chain's head, if they appended to it): before COMMIT.
    func finish() async throws {
        guard let moved = head.withLock({ state in state.flatMap { $0.moved ? ($0.sequence, $0.hash) : nil } }) else { return }
        try await base.raw("UPDATE audit_head SET seq = \(bind: moved.0), hash = \(bind: moved.1) WHERE id = 1").run()
    }
}
