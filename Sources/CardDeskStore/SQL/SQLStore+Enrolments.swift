public import CardDeskCore
import Foundation
import SQLKit

extension SQLStore: EnrolmentStore {
    public func addEnrolment(_ enrolment: EnrolmentRecord, audit: AuditEvent) async throws {
        try await host.transaction { db in
            try await db.raw("""
                INSERT INTO enrolments (id, token_hash, user_id, key_algorithm, validity_days, card_serial, status, created_at, expires_at)
                VALUES (\(bind: enrolment.id), \(bind: enrolment.tokenHash), \(bind: enrolment.userID.rawValue), \(bind: enrolment.keyAlgorithm),
                        \(bind: enrolment.validityDays.map(Int64.init)), NULL, \(bind: enrolment.status.rawValue),
                        \(bind: enrolment.createdAt.millisecondsSince1970), \(bind: enrolment.expiresAt.millisecondsSince1970))
                """).run()
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    public func enrolment(tokenHash: String) async throws -> EnrolmentRecord? {
        try await host.read { db in
            guard let row = try await db.raw("SELECT * FROM enrolments WHERE token_hash = \(bind: tokenHash)").first() else { return nil }
            return try Self.enrolment(row)
        }
    }

    public func abandonedEnrolments(before cutoff: Timestamp, limit: Int) async throws -> [EnrolmentRecord] {
        try await host.read { db in
            try await db.raw("""
                SELECT e.* FROM enrolments e
                WHERE e.card_serial IS NOT NULL AND (
                    (e.status = 'open' AND e.expires_at < \(bind: cutoff.millisecondsSince1970))
                    OR (e.status = 'expired' AND EXISTS (
                        SELECT 1 FROM certificates c WHERE c.card_serial = e.card_serial AND c.status = 'good')))
                ORDER BY e.expires_at LIMIT \(bind: Int64(limit))
                """).all().map(Self.enrolment)
        }
    }

    public func abandonEnrolment(id: String, cardSerial: String, audit: AuditEvent) async throws -> Bool {
        try await endEnrolment(id: id, cardSerial: cardSerial, as: .expired, card: .cancelled, audit: audit)
    }

    /// Ends an open enrolment (`done` or `expired`) and moves its enrolling card on, with the audit entry, in one
    /// transaction; one statement decides, so only one of two racing ends wins.
    private func endEnrolment(id: String, cardSerial: String, as status: EnrolmentRecord.Status, card: CardRecord.Status, audit: AuditEvent) async throws -> Bool {
        try await host.transaction { db in
            let ended = try await db.raw("""
                UPDATE enrolments SET status = \(bind: status.rawValue)
                WHERE id = \(bind: id) AND card_serial = \(bind: cardSerial) AND status = 'open' RETURNING id
                """).all()
            guard ended.count == 1 else { return false }
            try await db.raw("UPDATE cards SET status = \(bind: card.rawValue) WHERE serial = \(bind: cardSerial) AND status = 'enrolling'").run()
            _ = try await self.appendAudit(audit, on: db)
            return true
        }
    }

    static func enrolment(_ row: any SQLRow) throws -> EnrolmentRecord {
            EnrolmentRecord(
                id: try row.decode(column: "id", as: String.self),
                tokenHash: try row.decode(column: "token_hash", as: String.self),
                userID: try UserID(try row.decode(column: "user_id", as: String.self)),
                keyAlgorithm: try row.decode(column: "key_algorithm", as: String.self),
                validityDays: try row.decode(column: "validity_days", as: Int64?.self).map(Int.init),
                cardSerial: try row.decode(column: "card_serial", as: String?.self),
                status: EnrolmentRecord.Status(rawValue: try row.decode(column: "status", as: String.self)) ?? .done,
                createdAt: Timestamp(millisecondsSince1970: try row.decode(column: "created_at", as: Int64.self)),
                expiresAt: Timestamp(millisecondsSince1970: try row.decode(column: "expires_at", as: Int64.self))
            )
    }

    public func attachCard(_ card: CardRecord, toEnrolment id: String, audit: AuditEvent) async throws -> Bool {
        struct AlreadyAttached: Error {}
        do {
            try await host.transaction { db in
                // The card first (the enrolment refers to it), then one statement decides: two workstations racing with
                // the same token cannot both attach a card (the loser's transaction, card included, is rolled back).
                try await Self.insertCard(card, on: db)
                let claimed = try await db.raw("""
                    UPDATE enrolments SET card_serial = \(bind: card.serial)
                    WHERE id = \(bind: id) AND card_serial IS NULL AND status = 'open'
                    RETURNING id
                    """).all()
                guard claimed.count == 1 else { throw AlreadyAttached() }
                _ = try await self.appendAudit(audit, on: db)
            }
            return true
        } catch is AlreadyAttached {
            return false
        }
    }

    public func completeEnrolment(id: String, cardSerial: String, audit: AuditEvent) async throws -> Bool {
        try await endEnrolment(id: id, cardSerial: cardSerial, as: .done, card: .active, audit: audit)
    }
}
