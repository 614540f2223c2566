public import CardDeskCore
import Foundation
import SQLKit

extension SQLStore: ReminderStore {
    public func cardsExpiring(after now: Timestamp, until: Timestamp, limit: Int) async throws -> [ExpiringCard] {
        try await host.read { db in
            try await db.raw("""
                SELECT k.serial, k.user_id, u.given_name, e.not_after, uc.email, uc.email_confirmed
                FROM (SELECT card_serial, MIN(not_after) AS not_after FROM certificates
                      WHERE status = 'good' AND card_serial IS NOT NULL GROUP BY card_serial) e
                JOIN cards k ON k.serial = e.card_serial
                JOIN users u ON u.id = k.user_id
                LEFT JOIN user_contacts uc ON uc.user_id = k.user_id
                WHERE k.status = 'active' AND e.not_after > \(bind: now.millisecondsSince1970) AND e.not_after <= \(bind: until.millisecondsSince1970)
                ORDER BY e.not_after, k.serial
                LIMIT \(bind: limit)
                """).all().map { row in
                let confirmed = try row.decode(column: "email_confirmed", as: Bool?.self) ?? false
                return ExpiringCard(
                    cardSerial: try row.decode(column: "serial", as: String.self),
                    userID: try UserID(try row.decode(column: "user_id", as: String.self)),
                    givenName: try row.decode(column: "given_name", as: String.self),
                    notAfter: Timestamp(millisecondsSince1970: try row.decode(column: "not_after", as: Int64.self)),
                    email: confirmed ? try row.decode(column: "email", as: String?.self) : nil
                )
            }
        }
    }

    public func recordReminder(card: String, days: Int, notAfter: Timestamp, message: OutboxMessage, audit: AuditEvent) async throws -> Bool {
        try await host.transaction { db in
            let inserted = try await db.raw("""
                INSERT INTO expiry_reminders (card_serial, days, not_after, sent_at)
                VALUES (\(bind: card), \(bind: days), \(bind: notAfter.millisecondsSince1970), \(bind: audit.time.millisecondsSince1970))
                ON CONFLICT (card_serial, days, not_after) DO NOTHING
                RETURNING card_serial
                """).all()
            guard !inserted.isEmpty else { return false }
            try await Self.insertMessage(message, on: db)
            _ = try await self.appendAudit(audit, on: db)
            return true
        }
    }
}
