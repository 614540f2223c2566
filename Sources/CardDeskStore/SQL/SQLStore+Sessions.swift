public import CardDeskCore
import SQLKit

extension SQLStore: SessionStore {
    @discardableResult
    public func addSession(_ session: SessionRecord, audit: AuditEvent, using challenge: ChallengeUse?) async throws -> Bool {
        try await transaction(using: challenge) { db in try await Self.insertSession(session, audit: audit, store: self, on: db) }
    }

    private static func insertSession(_ session: SessionRecord, audit: AuditEvent, store: SQLStore, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO sessions (id, token_hash, user_id, card_serial, certificate_serial, role_code, role_organisation,
                                  created_at, last_seen_at, ended_at, end_reason, parent_id)
            VALUES (\(bind: session.id), \(bind: session.tokenHash), \(bind: session.userID.rawValue), \(bind: session.cardSerial),
                    \(bind: session.certificateSerial.hex), \(bind: session.role?.code), \(bind: session.role?.organisation),
                    \(bind: session.createdAt.millisecondsSince1970), \(bind: session.lastSeenAt.millisecondsSince1970),
                    \(bind: session.endedAt?.millisecondsSince1970), \(bind: session.endReason), \(bind: session.parentID))
            """).run()
        _ = try await store.appendAudit(audit, on: db)
    }

    // Each update writes only its own columns, and only while the session is open (`ended_at IS NULL`): a request
    // that read the session before a logout can never write it back open.

    public func chooseRole(sessionID: String, role: Role, audit: AuditEvent) async throws -> Bool {
        try await host.transaction { db in
            let changed = try await db.raw("""
                UPDATE sessions SET role_code = \(bind: role.code), role_organisation = \(bind: role.organisation)
                WHERE id = \(bind: sessionID) AND ended_at IS NULL RETURNING id
                """).first() != nil
            if changed { _ = try await self.appendAudit(audit, on: db) }
            return changed
        }
    }

    public func touchSession(id: String, lastSeenAt: Timestamp) async throws {
        try await host.transaction { db in
            try await db.raw("""
                UPDATE sessions SET last_seen_at = \(bind: lastSeenAt.millisecondsSince1970)
                WHERE id = \(bind: id) AND ended_at IS NULL AND last_seen_at < \(bind: lastSeenAt.millisecondsSince1970)
                """).run()
        }
    }

    public func endSession(id: String, at time: Timestamp, reason: String, audit: AuditEvent?) async throws -> Bool {
        try await host.transaction { db in
            let ended = try await db.raw("""
                UPDATE sessions SET ended_at = \(bind: time.millisecondsSince1970), end_reason = \(bind: reason)
                WHERE id = \(bind: id) AND ended_at IS NULL RETURNING id
                """).first() != nil
            if ended, let audit { _ = try await self.appendAudit(audit, on: db) }
            return ended
        }
    }

    public func session(tokenHash: String) async throws -> SessionRecord? {
        try await host.read { db in
            guard let row = try await db.raw("SELECT * FROM sessions WHERE token_hash = \(bind: tokenHash)").first() else { return nil }
            return try Self.session(row)
        }
    }

    public func session(id: String) async throws -> SessionRecord? {
        try await host.read { db in
            guard let row = try await db.raw("SELECT * FROM sessions WHERE id = \(bind: id)").first() else { return nil }
            return try Self.session(row)
        }
    }

    private static func session(_ row: any SQLRow) throws -> SessionRecord {
            let roleCode = try row.decode(column: "role_code", as: String?.self)
            let roleOrganisation = try row.decode(column: "role_organisation", as: String?.self)
            return SessionRecord(
                id: try row.decode(column: "id", as: String.self),
                tokenHash: try row.decode(column: "token_hash", as: String.self),
                userID: try UserID(try row.decode(column: "user_id", as: String.self)),
                cardSerial: try row.decode(column: "card_serial", as: String.self),
                certificateSerial: try SerialNumber(hex: try row.decode(column: "certificate_serial", as: String.self)),
                role: try roleCode.flatMap { code in try roleOrganisation.map { try Role(code: code, organisation: $0) } },
                createdAt: Timestamp(millisecondsSince1970: try row.decode(column: "created_at", as: Int64.self)),
                lastSeenAt: Timestamp(millisecondsSince1970: try row.decode(column: "last_seen_at", as: Int64.self)),
                endedAt: try row.decode(column: "ended_at", as: Int64?.self).map(Timestamp.init(millisecondsSince1970:)),
                endReason: try row.decode(column: "end_reason", as: String?.self),
                parentID: try row.decode(column: "parent_id", as: String?.self)
            )
    }
}
