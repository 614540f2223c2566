public import CardDeskCore
import Foundation
import SQLKit

extension SQLStore: UnlockStore, OutboxStore {
    public func contacts(userID: UserID) async throws -> ContactDetails? {
        try await host.read { db in
            guard let row = try await db.raw("SELECT * FROM user_contacts WHERE user_id = \(bind: userID.rawValue)").first() else { return nil }
            return ContactDetails(
                userID: userID,
                email: try row.decode(column: "email", as: String?.self),
                emailConfirmed: try row.decode(column: "email_confirmed", as: Bool.self),
                mobile: try row.decode(column: "mobile", as: String?.self),
                mobileConfirmed: try row.decode(column: "mobile_confirmed", as: Bool.self)
            )
        }
    }

    public func saveContacts(_ contacts: ContactDetails, audit: AuditEvent) async throws {
        try await host.transaction { db in
            let id = contacts.userID.rawValue
            guard try await db.raw("SELECT id FROM users WHERE id = \(bind: id)").first() != nil else {
                throw CardDeskError(.unknownUser, "There is no user \(id).")
            }
            try await db.raw("DELETE FROM user_contacts WHERE user_id = \(bind: id)").run()
            try await db.raw("""
                INSERT INTO user_contacts (user_id, email, email_confirmed, mobile, mobile_confirmed, updated_at)
                VALUES (\(bind: id), \(bind: contacts.email), \(bind: contacts.emailConfirmed), \(bind: contacts.mobile),
                        \(bind: contacts.mobileConfirmed), \(bind: audit.time.millisecondsSince1970))
                """).run()
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    public func addCode(_ code: OneTimeCodeRecord, message: OutboxMessage, audit: AuditEvent, limit: Int) async throws {
        try await host.transaction { db in
            let since = code.createdAt.adding(seconds: -3600).millisecondsSince1970
            // Serialise requests for the same card (or user) so that two at once cannot both slip under the limit.
            if self.host.flavour == .postgres {
                if let serial = code.cardSerial {
                    _ = try await db.raw("SELECT serial FROM cards WHERE serial = \(bind: serial) FOR UPDATE").first()
                } else {
                    _ = try await db.raw("SELECT id FROM users WHERE id = \(bind: code.userID.rawValue) FOR UPDATE").first()
                }
            }
            let recent: [any SQLRow]
            if let serial = code.cardSerial {
                recent = try await db.raw("""
                    SELECT created_at FROM one_time_codes WHERE card_serial = \(bind: serial) AND purpose = \(bind: code.purpose.rawValue)
                      AND created_at > \(bind: since) ORDER BY created_at
                    """).all()
            } else {
                recent = try await db.raw("""
                    SELECT created_at FROM one_time_codes WHERE user_id = \(bind: code.userID.rawValue) AND purpose = \(bind: code.purpose.rawValue)
                      AND created_at > \(bind: since) ORDER BY created_at
                    """).all()
            }
            if recent.count >= limit, let first = recent.first {
                let earliest = try first.decode(column: "created_at", as: Int64.self)
                throw CodeLimitReached(retryAfter: Timestamp(millisecondsSince1970: earliest + 3_600_000))
            }
            try await db.raw("""
                INSERT INTO one_time_codes (id, purpose, user_id, card_serial, channel, recipient, code_hash, created_at, expires_at, failed_attempts)
                VALUES (\(bind: code.id), \(bind: code.purpose.rawValue), \(bind: code.userID.rawValue), \(bind: code.cardSerial),
                        \(bind: code.channel.rawValue), \(bind: code.recipient), \(bind: code.codeHash), \(bind: code.createdAt.millisecondsSince1970),
                        \(bind: code.expiresAt.millisecondsSince1970), 0)
                """).run()
            try await Self.insertMessage(message, on: db)
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    public func addMessage(_ message: OutboxMessage, audit: AuditEvent) async throws {
        try await host.transaction { db in
            try await Self.insertMessage(message, on: db)
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    static func insertMessage(_ message: OutboxMessage, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO outbox (id, channel, recipient, subject, body_sealed, created_at, attempts, next_attempt_at)
            VALUES (\(bind: message.id), \(bind: message.channel.rawValue), \(bind: message.recipient), \(bind: message.subject),
                    \(bind: Data(message.bodySealed)), \(bind: message.createdAt.millisecondsSince1970), 0, \(bind: message.nextAttemptAt.millisecondsSince1970))
            """).run()
    }

    public func code(id: String) async throws -> OneTimeCodeRecord? {
        try await host.read { db in
            guard let row = try await db.raw("SELECT * FROM one_time_codes WHERE id = \(bind: id)").first() else { return nil }
            return try Self.code(row)
        }
    }

    public func takeCodeAttempt(id: String, purpose: OneTimeCodeRecord.Purpose, now: Timestamp, maximum: Int) async throws -> OneTimeCodeRecord? {
        try await host.transaction { db in
            // One statement decides and counts: of any number of concurrent attempts, at most `maximum` get a row.
            guard let row = try await db.raw("""
                UPDATE one_time_codes SET failed_attempts = failed_attempts + 1
                WHERE id = \(bind: id) AND purpose = \(bind: purpose.rawValue) AND used_at IS NULL AND voided_at IS NULL
                  AND expires_at > \(bind: now.millisecondsSince1970) AND failed_attempts < \(bind: maximum)
                RETURNING *
                """).first() else { return nil }
            return try Self.code(row)
        }
    }

    public func recordWrongCode(id: String, void: Bool, at time: Timestamp, audit: AuditEvent) async throws {
        try await host.transaction { db in
            if void {
                try await db.raw("""
                    UPDATE one_time_codes SET voided_at = \(bind: time.millisecondsSince1970) WHERE id = \(bind: id) AND voided_at IS NULL AND used_at IS NULL
                    """).run()
            }
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    public func useCode(id: String, at time: Timestamp, tokenHash: String?, tokenExpiresAt: Timestamp?, audit: AuditEvent) async throws -> Bool {
        try await host.transaction { db in
            // Compare-and-set: a code is used once, and never after it was voided.
            let used = try await db.raw("""
                UPDATE one_time_codes SET used_at = \(bind: time.millisecondsSince1970), token_hash = \(bind: tokenHash),
                    token_expires_at = \(bind: tokenExpiresAt?.millisecondsSince1970)
                WHERE id = \(bind: id) AND used_at IS NULL AND voided_at IS NULL RETURNING id
                """).first() != nil
            if used { _ = try await self.appendAudit(audit, on: db) }
            return used
        }
    }

    public func completeCode(id: String, at time: Timestamp, audit: AuditEvent) async throws -> Bool {
        try await host.transaction { db in
            let completed = try await db.raw("""
                UPDATE one_time_codes SET completed_at = \(bind: time.millisecondsSince1970)
                WHERE id = \(bind: id) AND used_at IS NOT NULL AND completed_at IS NULL RETURNING id
                """).first() != nil
            if completed { _ = try await self.appendAudit(audit, on: db) }
            return completed
        }
    }

    static func code(_ row: any SQLRow) throws -> OneTimeCodeRecord {
        func time(_ column: String) throws -> Timestamp? {
            try row.decode(column: column, as: Int64?.self).map(Timestamp.init(millisecondsSince1970:))
        }
        let id = try row.decode(column: "id", as: String.self)
        guard let purpose = OneTimeCodeRecord.Purpose(rawValue: try row.decode(column: "purpose", as: String.self)),
              let channel = ContactChannel(rawValue: try row.decode(column: "channel", as: String.self)),
              let createdAt = try time("created_at"), let expiresAt = try time("expires_at")
        else { throw CardDeskError(.storageUnavailable, "One-time code \(id) has an unknown purpose or channel in the database.") }
        return OneTimeCodeRecord(
            id: id, purpose: purpose, userID: try UserID(try row.decode(column: "user_id", as: String.self)),
            cardSerial: try row.decode(column: "card_serial", as: String?.self), channel: channel,
            recipient: try row.decode(column: "recipient", as: String.self), codeHash: try row.decode(column: "code_hash", as: String.self),
            createdAt: createdAt, expiresAt: expiresAt,
            failedAttempts: try row.decode(column: "failed_attempts", as: Int.self), usedAt: try time("used_at"), voidedAt: try time("voided_at"),
            tokenHash: try row.decode(column: "token_hash", as: String?.self), tokenExpiresAt: try time("token_expires_at"),
            completedAt: try time("completed_at")
        )
    }

    public func dueMessages(now: Timestamp, limit: Int) async throws -> [OutboxMessage] {
        try await host.read { db in
            try await db.raw("""
                SELECT * FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= \(bind: now.millisecondsSince1970)
                ORDER BY created_at LIMIT \(bind: limit)
                """).all().map { row in
                guard let channel = ContactChannel(rawValue: try row.decode(column: "channel", as: String.self)) else {
                    throw CardDeskError(.storageUnavailable, "An outbox message has an unknown channel.")
                }
                return OutboxMessage(
                    id: try row.decode(column: "id", as: String.self), channel: channel,
                    recipient: try row.decode(column: "recipient", as: String.self), subject: try row.decode(column: "subject", as: String.self),
                    bodySealed: Array(try row.decode(column: "body_sealed", as: Data.self)),
                    createdAt: Timestamp(millisecondsSince1970: try row.decode(column: "created_at", as: Int64.self)),
                    attempts: try row.decode(column: "attempts", as: Int.self),
                    nextAttemptAt: Timestamp(millisecondsSince1970: try row.decode(column: "next_attempt_at", as: Int64.self)),
                    lastError: try row.decode(column: "last_error", as: String?.self)
                )
            }
        }
    }

    public func claimMessage(_ message: OutboxMessage, leaseUntil: Timestamp) async throws -> Bool {
        try await host.transaction { db in
            // Compare-and-set on the attempt time read: of several workers, exactly one gets the row back.
            try await db.raw("""
                UPDATE outbox SET next_attempt_at = \(bind: leaseUntil.millisecondsSince1970)
                WHERE id = \(bind: message.id) AND sent_at IS NULL AND next_attempt_at = \(bind: message.nextAttemptAt.millisecondsSince1970)
                RETURNING id
                """).first() != nil
        }
    }

    public func markSent(id: String, at time: Timestamp) async throws {
        try await host.transaction { db in
            try await db.raw("""
                UPDATE outbox SET sent_at = \(bind: time.millisecondsSince1970), body_sealed = \(bind: Data()), last_error = NULL WHERE id = \(bind: id)
                """).run()
        }
    }

    public func markFailed(id: String, error: String, nextAttemptAt: Timestamp) async throws {
        try await host.transaction { db in
            try await db.raw("""
                UPDATE outbox SET attempts = attempts + 1, last_error = \(bind: String(error.prefix(500))),
                    next_attempt_at = \(bind: nextAttemptAt.millisecondsSince1970) WHERE id = \(bind: id)
                """).run()
        }
    }
}
