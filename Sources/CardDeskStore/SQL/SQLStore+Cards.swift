public import CardDeskCore
import Foundation
import SQLKit

extension SQLStore: CardRegistry, RenewalStore {
    public func addCard(_ card: CardRecord, audit: AuditEvent) async throws {
        try await host.transaction { db in
            guard try await db.raw("SELECT serial FROM cards WHERE serial = \(bind: card.serial)").first() == nil else {
                throw CardDeskError(.invalidInput, "A card with serial \(card.serial) already exists.")
            }
            try await Self.insertCard(card, on: db)
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    static func insertCard(_ card: CardRecord, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO cards (serial, user_id, status, created_at, key_algorithm, management_key_sealed, puk_sealed)
            VALUES (\(bind: card.serial), \(bind: card.userID.rawValue), \(bind: card.status.rawValue), \(bind: card.createdAt.millisecondsSince1970),
                    \(bind: card.keyAlgorithm), \(bind: Data(card.managementKeySealed)), \(bind: Data(card.pukSealed)))
            """).run()
    }

    public func replaceManagementKey(serial: String, sealed: [UInt8], audit: AuditEvent) async throws {
        try await host.transaction { db in
            try await db.raw("UPDATE cards SET management_key_sealed = \(bind: Data(sealed)) WHERE serial = \(bind: serial) AND status = 'enrolling'").run()
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    public func card(serial: String) async throws -> CardRecord? {
        try await host.read { db in
            try await db.raw("SELECT * FROM cards WHERE serial = \(bind: serial)").first().map(Self.cardRecord(from:))
        }
    }

    /// A person's cards, newest first.
    public func cards(userID: UserID) async throws -> [CardRecord] {
        try await host.read { db in
            try await db.raw("SELECT * FROM cards WHERE user_id = \(bind: userID.rawValue) ORDER BY created_at DESC, serial").all().map(Self.cardRecord(from:))
        }
    }

    static func cardRecord(from row: any SQLRow) throws -> CardRecord {
        let statusText = try row.decode(column: "status", as: String.self)
        return CardRecord(
            serial: try row.decode(column: "serial", as: String.self),
            userID: try UserID(try row.decode(column: "user_id", as: String.self)),
            status: CardRecord.Status(rawValue: statusText) ?? .cancelled,
            keyAlgorithm: try row.decode(column: "key_algorithm", as: String.self),
            managementKeySealed: Array(try row.decode(column: "management_key_sealed", as: Data?.self) ?? Data()),
            pukSealed: Array(try row.decode(column: "puk_sealed", as: Data?.self) ?? Data()),
            pukNextSealed: try row.decode(column: "puk_next_sealed", as: Data?.self).map(Array.init),
            pukReleasedAt: try row.decode(column: "puk_released_at", as: Int64?.self).map(Timestamp.init(millisecondsSince1970:)),
            createdAt: Timestamp(millisecondsSince1970: try row.decode(column: "created_at", as: Int64.self))
        )
    }

    public func addChallenge(_ nonce: String, purpose: String, expiresAt: Timestamp) async throws {
        // Not durable: a challenge lost in a crash only makes its card ask for another one. Using one up stays durable.
        try await host.transaction(durable: false) { db in
            try await db.raw("""
                INSERT INTO challenges (nonce, purpose, expires_at) VALUES (\(bind: nonce), \(bind: purpose), \(bind: expiresAt.millisecondsSince1970))
                """).run()
        }
    }

    public func consumeChallenge(_ nonce: String, purpose: String, now: Timestamp) async throws -> Bool {
        try await host.transaction { db in
            // One statement decides: two requests racing with the same challenge cannot both win.
            let rows = try await db.raw("""
                UPDATE challenges SET used_at = \(bind: now.millisecondsSince1970)
                WHERE nonce = \(bind: nonce) AND purpose = \(bind: purpose) AND used_at IS NULL AND expires_at > \(bind: now.millisecondsSince1970)
                RETURNING nonce
                """).all()
            // Expired challenges are deleted by the maintenance pass (`purgeExpired`), not on every sign-in.
            return rows.count == 1
        }
    }

    public func useChallenge(_ use: ChallengeUse) async throws -> Bool {
        try await host.transaction { db in try await Self.useChallenge(use, on: db) }
    }

    /// Thrown inside a transaction to roll it back: the challenge was used by another request.
    struct ChallengeAlreadyUsed: Error {}

    /// One statement decides: two requests racing with the same challenge cannot both write it.
    static func useChallenge(_ use: ChallengeUse, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("""
            INSERT INTO challenges (nonce, purpose, expires_at, used_at)
            VALUES (\(bind: use.hash), \(bind: use.purpose), \(bind: use.expiresAt.millisecondsSince1970), \(bind: use.usedAt.millisecondsSince1970))
            ON CONFLICT (nonce) DO NOTHING
            RETURNING nonce
            """).all().count == 1
    }

    public func activeRenewal(cardSerial: String) async throws -> RenewalRecord? {
        try await host.read { db in
            try await db.raw("SELECT * FROM renewals WHERE card_serial = \(bind: cardSerial) AND status = 'active' ORDER BY created_at DESC")
                .first().map(Self.renewalRecord(from:))
        }
    }

    public func latestRenewal(cardSerial: String) async throws -> RenewalRecord? {
        try await host.read { db in
            try await db.raw("SELECT * FROM renewals WHERE card_serial = \(bind: cardSerial) ORDER BY updated_at DESC LIMIT 1")
                .first().map(Self.renewalRecord(from:))
        }
    }

    public func finishedSelfRenewals(cardSerial: String) async throws -> Int {
        try await host.read { db in
            // Self-renewals finished since the card's last renewal by an RA (or since it was issued).
            try await db.raw("""
                SELECT count(*) AS n FROM renewals
                WHERE card_serial = \(bind: cardSerial) AND status = 'done' AND performed_by IS NULL
                  AND created_at > COALESCE((SELECT max(created_at) FROM renewals
                                             WHERE card_serial = \(bind: cardSerial) AND status = 'done' AND performed_by IS NOT NULL), -1)
                """).first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    public func renewal(id: String) async throws -> RenewalRecord? {
        try await host.read { db in
            try await db.raw("SELECT * FROM renewals WHERE id = \(bind: id)").first().map(Self.renewalRecord(from:))
        }
    }

    public func saveRenewal(_ renewal: RenewalRecord, audit: AuditEvent) async throws {
        try await host.transaction { db in try await self.saveRenewal(renewal, audit: audit, on: db) }
    }

    public func saveRenewal(_ renewal: RenewalRecord, audit: AuditEvent, using challenge: ChallengeUse) async throws -> Bool {
        try await transaction(using: challenge) { db in try await self.saveRenewal(renewal, audit: audit, on: db) }
    }

    /// A transaction that first uses `challenge` (if given) and then writes `body`: false, with nothing written, when
    /// the challenge was used already (by a request racing this one).
    func transaction(using challenge: ChallengeUse?, _ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws -> Bool {
        do {
            try await host.transaction { db in
                if let challenge, try await !Self.useChallenge(challenge, on: db) { throw ChallengeAlreadyUsed() }
                try await body(db)
            }
            return true
        } catch is ChallengeAlreadyUsed {
            return false
        }
    }

    func saveRenewal(_ renewal: RenewalRecord, audit: AuditEvent, on db: any SQLDatabase) async throws {
        if renewal.version == 1 {
            let other = try await db.raw("SELECT id FROM renewals WHERE card_serial = \(bind: renewal.cardSerial) AND status = 'active'").first()
            guard other == nil else {
                throw CardDeskError(.renewalConflict, "A renewal of this card is already in progress; run the renewal again to continue it.")
            }
            try await db.raw("""
                INSERT INTO renewals (id, card_serial, user_id, status, state, token_hash, token_expires_at, version, created_at, updated_at, performed_by)
                VALUES (\(bind: renewal.id), \(bind: renewal.cardSerial), \(bind: renewal.userID.rawValue), \(bind: renewal.status.rawValue),
                        \(bind: renewal.state), \(bind: renewal.tokenHash), \(bind: renewal.tokenExpiresAt.millisecondsSince1970),
                        1, \(bind: renewal.createdAt.millisecondsSince1970), \(bind: renewal.updatedAt.millisecondsSince1970), \(bind: renewal.performedBy))
                """).run()
        } else {
            let updated = try await db.raw("""
                UPDATE renewals SET status = \(bind: renewal.status.rawValue), state = \(bind: renewal.state),
                    token_hash = \(bind: renewal.tokenHash), token_expires_at = \(bind: renewal.tokenExpiresAt.millisecondsSince1970),
                    version = \(bind: renewal.version), updated_at = \(bind: renewal.updatedAt.millisecondsSince1970),
                    performed_by = \(bind: renewal.performedBy)
                WHERE id = \(bind: renewal.id) AND version = \(bind: renewal.version - 1)
                RETURNING id
                """).all()
            guard updated.count == 1 else {
                throw CardDeskError(.renewalConflict, "This renewal was changed by another session at the same time; run the renewal again to continue it.")
            }
        }
        _ = try await self.appendAudit(audit, on: db)
    }

    static func renewalRecord(from row: any SQLRow) throws -> RenewalRecord {
        RenewalRecord(
            id: try row.decode(column: "id", as: String.self),
            cardSerial: try row.decode(column: "card_serial", as: String.self),
            userID: try UserID(try row.decode(column: "user_id", as: String.self)),
            status: RenewalRecord.Status(rawValue: try row.decode(column: "status", as: String.self)) ?? .done,
            state: try row.decode(column: "state", as: String.self),
            tokenHash: try row.decode(column: "token_hash", as: String.self),
            tokenExpiresAt: Timestamp(millisecondsSince1970: try row.decode(column: "token_expires_at", as: Int64.self)),
            version: try row.decode(column: "version", as: Int64.self),
            createdAt: Timestamp(millisecondsSince1970: try row.decode(column: "created_at", as: Int64.self)),
            updatedAt: Timestamp(millisecondsSince1970: try row.decode(column: "updated_at", as: Int64.self)),
            performedBy: try row.decode(column: "performed_by", as: String?.self)
        )
    }
}

extension SQLStore {
    /// Marks a card cancelled (a card issue that failed half-way, and later the RA's "cancel card").
    public func releasePUK(serial: String, nextSealed: [UInt8], at time: Timestamp, audit: AuditEvent) async throws -> CardRecord {
        try await host.transaction { db in
            // A PUK already out keeps its successor: every release before the rotation names the same new PUK.
            try await db.raw("""
                UPDATE cards SET puk_next_sealed = \(bind: Data(nextSealed)), puk_released_at = \(bind: time.millisecondsSince1970)
                WHERE serial = \(bind: serial) AND puk_next_sealed IS NULL
                """).run()
            _ = try await self.appendAudit(audit, on: db)
        }
        guard let card = try await card(serial: serial) else { throw CardDeskError(.unknownCard, "There is no card \(serial).") }
        return card
    }

    public func completePUKRotation(serial: String, audit: AuditEvent) async throws -> Bool {
        try await host.transaction { db in
            let rows = try await db.raw("""
                UPDATE cards SET puk_sealed = puk_next_sealed, puk_next_sealed = NULL, puk_released_at = NULL
                WHERE serial = \(bind: serial) AND puk_next_sealed IS NOT NULL
                RETURNING serial
                """).all()
            guard rows.count == 1 else { return false }
            _ = try await self.appendAudit(audit, on: db)
            return true
        }
    }

    public func cancelCard(serial: String, audit: AuditEvent) async throws {
        try await host.transaction { db in
            try await db.raw("UPDATE cards SET status = 'cancelled' WHERE serial = \(bind: serial)").run()
            _ = try await self.appendAudit(audit, on: db)
        }
    }
}
