public import CardDeskCore
import SQLKit

extension SQLStore: AuditLogReader, AuditLogWriter {
    @discardableResult
    public func appendAudit(_ event: AuditEvent) async throws -> AuditEntry {
        try await host.transaction { db in try await self.appendAudit(event, on: db) }
    }

    /// Appends inside the caller's transaction, so the entry commits with the change it records. Every transaction
    /// runs in a group-commit batch, which reads the chain's head once and writes it once before COMMIT
    /// (`BatchDatabase`).
    func appendAudit(_ event: AuditEvent, on db: any SQLDatabase) async throws -> AuditEntry {
        guard let batch = db as? BatchDatabase else {
            throw CardDeskError(.internalFailure, "An audit entry was appended outside a store transaction; nothing was written.")
        }
        let (previousSequence, previousHash) = try await batch.auditHead(locked: host.flavour == .postgres)
        let sequence = previousSequence + 1
        let hash = AuditChain.hash(key: auditMAC, sequence: sequence, event: event, previousHash: previousHash)
        try await db.raw("""
            INSERT INTO audit_events (seq, at, actor, action, subject, outcome, details, prev_hash, hash)
            VALUES (\(bind: sequence), \(bind: event.time.millisecondsSince1970), \(bind: event.actor), \(bind: event.action.rawValue),
                    \(bind: event.subject), \(bind: event.outcome.rawValue), \(bind: event.details), \(bind: previousHash), \(bind: hash))
            """).run()
        batch.moveAuditHead(to: sequence, hash: hash)
        return AuditEntry(sequence: sequence, event: event, previousHash: previousHash, hash: hash)
    }

    /// Checks the whole chain with this store's key (and, if given, against a head kept elsewhere).
    public func verifyAuditChain(anchor: AuditChain.Anchor? = nil) async throws -> AuditChain.Verdict {
        try await AuditChain.verify(self, key: auditKey, anchor: anchor)
    }

    public func forEachAuditEntry(_ body: @escaping @Sendable (AuditEntry) throws -> Void) async throws {
        // Pages of rows, so a log of millions of entries is walked in bounded memory.
        var after: Int64 = 0
        while true {
            let rows = try await host.read { [after] db in
                try await db.raw("SELECT * FROM audit_events WHERE seq > \(bind: after) ORDER BY seq LIMIT 1000").all()
            }
            if rows.isEmpty { return }
            for row in rows {
                let entry = try Self.auditEntry(from: row)
                try body(entry)
                after = entry.sequence
            }
        }
    }

    public func auditHead() async throws -> (sequence: Int64, hash: String)? {
        try await host.read { db in
            guard let row = try await db.raw("SELECT seq, hash FROM audit_head WHERE id = 1").first() else { return nil }
            let sequence = try row.decode(column: "seq", as: Int64.self)
            return sequence == 0 ? nil : (sequence, try row.decode(column: "hash", as: String.self))
        }
    }

    static func auditEntry(from row: any SQLRow) throws -> AuditEntry {
        let outcomeText = try row.decode(column: "outcome", as: String.self)
        let event = AuditEvent(
            stored: AuditEvent.Action(rawValue: try row.decode(column: "action", as: String.self)),
            actor: try row.decode(column: "actor", as: String.self),
            subject: try row.decode(column: "subject", as: String.self),
            outcome: AuditEvent.Outcome(rawValue: outcomeText),
            details: try row.decode(column: "details", as: String.self),
            time: Timestamp(millisecondsSince1970: try row.decode(column: "at", as: Int64.self))
        )
        return AuditEntry(
            sequence: try row.decode(column: "seq", as: Int64.self),
            event: event,
            previousHash: try row.decode(column: "prev_hash", as: String.self),
            hash: try row.decode(column: "hash", as: String.self)
        )
    }
}
