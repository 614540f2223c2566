import CardDeskCore
import Crypto
import SQLKit

/// The schema, as numbered migrations shared by SQLite and PostgreSQL. Never edit a migration that has shipped:
/// add the next number.
struct Migration: Sendable {
    let version: Int64
    let name: String
    let statements: @Sendable (DatabaseHost.Flavour) -> [String]
}

enum Migrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "users, roles, cards, certificates, audit log, CRL numbers") { flavour in
            let blob = flavour == .postgres ? "BYTEA" : "BLOB"
            var statements = [
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    given_name TEXT NOT NULL,
                    family_name TEXT NOT NULL,
                    organisation TEXT NOT NULL,
                    status TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE user_roles (
                    user_id TEXT NOT NULL REFERENCES users(id),
                    position INTEGER NOT NULL,
                    role_code TEXT NOT NULL,
                    organisation TEXT NOT NULL,
                    PRIMARY KEY (user_id, role_code, organisation)
                )
                """,
                """
                CREATE TABLE cards (
                    serial TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL REFERENCES users(id),
                    status TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE certificates (
                    serial TEXT PRIMARY KEY,
                    profile TEXT NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users(id),
                    card_serial TEXT NULL REFERENCES cards(serial),
                    subject TEXT NOT NULL,
                    not_before BIGINT NOT NULL,
                    not_after BIGINT NOT NULL,
                    status TEXT NOT NULL,
                    revoked_at BIGINT NULL,
                    revocation_reason INTEGER NULL,
                    superseded_by TEXT NULL,
                    der \(blob) NOT NULL,
                    issued_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX certificates_by_profile_status ON certificates (profile, status)",
                "CREATE INDEX certificates_by_user ON certificates (user_id)",
                """
                CREATE TABLE audit_events (
                    seq BIGINT PRIMARY KEY,
                    at BIGINT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    details TEXT NOT NULL,
                    prev_hash TEXT NOT NULL,
                    hash TEXT NOT NULL
                )
                """,
                // One row: the chain's head. Appends lock it, so concurrent writers (several server instances on
                // PostgreSQL) form one chain instead of forking it.
                "CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
                // The head exists from the start (entry 0, the genesis hash), so the first appends also queue on its lock.
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '\(AuditChain.genesisHash)')",
                "CREATE TABLE crl_numbers (profile TEXT PRIMARY KEY, number BIGINT NOT NULL)",
            ]
            // The audit log is append-only in the database too. Someone with the database's owner rights can drop
            // these triggers; the hash chain is what makes such an edit visible (`audit verify`).
            switch flavour {
            case .sqlite:
                statements += [
                    AuditGuard.sqliteNoUpdate,
                    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
                ]
            case .postgres:
                statements += [
                    """
                    CREATE FUNCTION carddesk_audit_append_only() RETURNS trigger AS $$
                    BEGIN RAISE EXCEPTION 'the audit log is append-only'; END
                    $$ LANGUAGE plpgsql
                    """,
                    AuditGuard.postgresAppendOnly,
                ]
            }
            return statements
        },
        Migration(version: 2, name: "card administration secrets, renewals, challenges") { flavour in
            let blob = flavour == .postgres ? "BYTEA" : "BLOB"
            return [
                "ALTER TABLE cards ADD COLUMN key_algorithm TEXT NOT NULL DEFAULT 'rsa2048'",
                // The card's management key and PUK, sealed under the master key: the workstation never holds them.
                "ALTER TABLE cards ADD COLUMN management_key_sealed \(blob) NULL",
                "ALTER TABLE cards ADD COLUMN puk_sealed \(blob) NULL",
                "ALTER TABLE certificates ADD COLUMN renewal_id TEXT NULL",
                "CREATE INDEX certificates_by_card ON certificates (card_serial, profile, status)",
                "CREATE INDEX certificates_by_renewal ON certificates (renewal_id)",
                """
                CREATE TABLE challenges (
                    nonce TEXT PRIMARY KEY,
                    purpose TEXT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    used_at BIGINT NULL
                )
                """,
                """
                CREATE TABLE renewals (
                    id TEXT PRIMARY KEY,
                    card_serial TEXT NOT NULL REFERENCES cards(serial),
                    user_id TEXT NOT NULL REFERENCES users(id),
                    status TEXT NOT NULL,
                    state TEXT NOT NULL,
                    token_hash TEXT NOT NULL,
                    token_expires_at BIGINT NOT NULL,
                    version BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX renewals_by_card ON renewals (card_serial, status)",
            ]
        },
        Migration(version: 3, name: "login sessions") { _ in
            [
                """
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY,
                    token_hash TEXT NOT NULL UNIQUE,
                    user_id TEXT NOT NULL REFERENCES users(id),
                    card_serial TEXT NOT NULL REFERENCES cards(serial),
                    certificate_serial TEXT NOT NULL,
                    role_code TEXT NULL,
                    role_organisation TEXT NULL,
                    created_at BIGINT NOT NULL,
                    last_seen_at BIGINT NOT NULL,
                    ended_at BIGINT NULL,
                    end_reason TEXT NULL
                )
                """,
                "CREATE INDEX sessions_by_card ON sessions (card_serial, ended_at)",
            ]
        },
        Migration(version: 4, name: "browser sessions joined to the agent's session") { _ in
            [
                "ALTER TABLE sessions ADD COLUMN parent_id TEXT NULL REFERENCES sessions(id)",
                "CREATE INDEX sessions_by_parent ON sessions (parent_id)",
            ]
        },
        Migration(version: 5, name: "contact details, one-time codes, outbox") { flavour in
            let blob = flavour == .postgres ? "BYTEA" : "BLOB"
            return [
                """
                CREATE TABLE user_contacts (
                    user_id TEXT PRIMARY KEY REFERENCES users(id),
                    email TEXT NULL,
                    email_confirmed BOOLEAN NOT NULL DEFAULT FALSE,
                    mobile TEXT NULL,
                    mobile_confirmed BOOLEAN NOT NULL DEFAULT FALSE,
                    updated_at BIGINT NOT NULL
                )
                """,
                // Codes are kept only as keyed hashes; the token that authorises a reset only as a hash.
                """
                CREATE TABLE one_time_codes (
                    id TEXT PRIMARY KEY,
                    purpose TEXT NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users(id),
                    card_serial TEXT NULL REFERENCES cards(serial),
                    channel TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    code_hash TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    failed_attempts INTEGER NOT NULL DEFAULT 0,
                    used_at BIGINT NULL,
                    voided_at BIGINT NULL,
                    token_hash TEXT NULL,
                    token_expires_at BIGINT NULL,
                    completed_at BIGINT NULL
                )
                """,
                "CREATE INDEX one_time_codes_by_card ON one_time_codes (card_serial, created_at)",
                "CREATE INDEX one_time_codes_by_user ON one_time_codes (user_id, purpose, created_at)",
                // Messages to send; the body (it carries a code) is sealed under the master key.
                """
                CREATE TABLE outbox (
                    id TEXT PRIMARY KEY,
                    channel TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    body_sealed \(blob) NOT NULL,
                    created_at BIGINT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at BIGINT NOT NULL,
                    sent_at BIGINT NULL,
                    last_error TEXT NULL
                )
                """,
                "CREATE INDEX outbox_due ON outbox (sent_at, next_attempt_at)",
            ]
        },
        Migration(version: 6, name: "rate limits shared by every server instance") { flavour in
            // Counters that may be lost in a crash: PostgreSQL keeps them out of its write-ahead log.
            let unlogged = flavour == .postgres ? "UNLOGGED " : ""
            return [
                """
                CREATE \(unlogged)TABLE rate_limits (
                    bucket TEXT PRIMARY KEY,
                    window_start BIGINT NOT NULL,
                    hits BIGINT NOT NULL,
                    refusal_audited INTEGER NOT NULL DEFAULT 0
                )
                """,
                "CREATE INDEX rate_limits_by_window ON rate_limits (window_start)",
                "CREATE INDEX challenges_by_expiry ON challenges (expires_at)",
            ]
        },
        Migration(version: 8, name: "PIV cards: the PUK released for an unlock and its successor") { flavour in
            let blob = flavour == .postgres ? "BYTEA" : "BLOB"
            return [
                "ALTER TABLE cards ADD COLUMN puk_next_sealed \(blob) NULL",
                "ALTER TABLE cards ADD COLUMN puk_released_at BIGINT NULL",
            ]
        },
        Migration(version: 9, name: "card enrolment tokens") { _ in
            [
                """
                CREATE TABLE enrolments (
                    id TEXT PRIMARY KEY,
                    token_hash TEXT NOT NULL UNIQUE,
                    user_id TEXT NOT NULL REFERENCES users(id),
                    key_algorithm TEXT NOT NULL,
                    validity_days BIGINT NULL,
                    card_serial TEXT NULL REFERENCES cards(serial),
                    status TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
            ]
        },
        Migration(version: 10, name: "pre-signed OCSP answers; revocations found by sequence") { flavour in
            let blob = flavour == .postgres ? "BYTEA" : "BLOB"
            // A cache, rebuilt by signing again: PostgreSQL keeps it out of its write-ahead log.
            let unlogged = flavour == .postgres ? "UNLOGGED " : ""
            return [
                """
                CREATE \(unlogged)TABLE ocsp_responses (
                    serial TEXT PRIMARY KEY,
                    profile TEXT NOT NULL,
                    status TEXT NOT NULL,
                    der \(blob) NOT NULL,
                    this_update BIGINT NOT NULL,
                    next_update BIGINT NOT NULL,
                    refresh_after BIGINT NOT NULL
                )
                """,
                "CREATE INDEX ocsp_responses_due ON ocsp_responses (refresh_after)",
                // Every instance follows revocations by audit sequence, to drop the answers it keeps in memory.
                "CREATE INDEX audit_revocations ON audit_events (seq) WHERE action = 'certificate.revoke'",
            ]
        },
        Migration(version: 11, name: "agent presence shared by every server instance") { flavour in
            // A hint refreshed every few seconds: PostgreSQL keeps it out of its write-ahead log.
            let unlogged = flavour == .postgres ? "UNLOGGED " : ""
            return [
                "CREATE \(unlogged)TABLE agent_presence (address TEXT PRIMARY KEY, bridge_port INTEGER NOT NULL, seen_at BIGINT NOT NULL)",
                "CREATE INDEX agent_presence_by_time ON agent_presence (seen_at)",
            ]
        },
        Migration(version: 12, name: "the RA console's reads: a person's cards, and the audit entries about a person or card") { _ in
            [
                "CREATE INDEX cards_by_user ON cards (user_id, created_at)",
                "CREATE INDEX audit_by_subject ON audit_events (subject, seq)",
                // The expiry report: good certificates by expiry.
                "CREATE INDEX certificates_by_expiry ON certificates (status, not_after)",
            ]
        },
        Migration(version: 13, name: "expiry reminders: each sent once per card, threshold and expiry") { _ in
            [
                """
                CREATE TABLE expiry_reminders (
                    card_serial TEXT NOT NULL,
                    days INTEGER NOT NULL,
                    not_after BIGINT NOT NULL,
                    sent_at BIGINT NOT NULL,
                    PRIMARY KEY (card_serial, days, not_after)
                )
                """,
            ]
        },
        Migration(version: 14, name: "renewals done by an RA for the holder (they start the self-renewal count again)") { _ in
            ["ALTER TABLE renewals ADD COLUMN performed_by TEXT"]
        },
    ]

    /// Version 7 rewrites data rather than schema: it keys the audit chain (see `keyAuditChain`).
    static let keyedAuditChain: Int64 = 7

    /// Applies every migration not yet applied, in one transaction.
    static func run(on host: DatabaseHost, now: Int64, auditKey: SymmetricKey) async throws {
        try await host.transaction { db in
            if host.flavour == .postgres {
                // Several instances may start at once: one migrates, the others wait here.
                try await db.raw("SELECT pg_advisory_xact_lock(727372)").run()
            }
            try await db.raw(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            ).run()
            let applied = Set(try await db.raw("SELECT version FROM schema_migrations").all().map { try $0.decode(column: "version", as: Int64.self) })
            for migration in all where !applied.contains(migration.version) {
                for statement in migration.statements(host.flavour) {
                    try await db.raw(SQLQueryString(statement)).run()
                }
                try await db.raw(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: now))"
                ).run()
            }
            if !applied.contains(keyedAuditChain) {
                try await keyAuditChain(on: db, flavour: host.flavour, key: auditKey)
                try await db.raw(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: keyedAuditChain), 'audit chain keyed with the master key', \(bind: now))"
                ).run()
            }
        }
    }

    /// Logs written before version 7 carry unkeyed SHA-256 hashes. The chain is checked as it was written, then every
    /// hash is recomputed under the key, in the same transaction as the rest of the upgrade. A log that does not
    /// verify is not re-keyed (that would launder the tampering): the server refuses to start and says where it breaks.
    static func keyAuditChain(on db: any SQLDatabase, flavour: DatabaseHost.Flavour, key: SymmetricKey) async throws {
        let rows = try await db.raw("SELECT * FROM audit_events ORDER BY seq").all()
        guard !rows.isEmpty else { return }
        let entries = try rows.map(SQLStore.auditEntry(from:))
        var walk = AuditWalk()
        var rekeyed: [(Int64, String, String)] = []
        var keyedPrevious = AuditChain.genesisHash
        for entry in entries {
            walk.check(entry, hash: AuditChain.unkeyedHash)
            if case .broken(let sequence, let reason)? = walk.broken {
                throw CardDeskError(
                    .auditChainBroken,
                    "The audit log does not verify at entry \(sequence) (\(reason)), so it cannot be upgraded to the keyed chain. Keep a copy of the database for investigation, and start from a backup."
                )
            }
            let hash = AuditChain.hash(key: key, sequence: entry.sequence, event: entry.event, previousHash: keyedPrevious)
            rekeyed.append((entry.sequence, keyedPrevious, hash))
            keyedPrevious = hash
        }
        // The log is append-only (triggers refuse UPDATE): lift that for this one rewrite, then put it back.
        let guardTrigger = AuditGuard.updateTrigger(flavour)
        try await db.raw(SQLQueryString(guardTrigger.drop)).run()
        for (sequence, previousHash, hash) in rekeyed {
            try await db.raw("UPDATE audit_events SET prev_hash = \(bind: previousHash), hash = \(bind: hash) WHERE seq = \(bind: sequence)").run()
        }
        try await db.raw("UPDATE audit_head SET hash = \(bind: keyedPrevious) WHERE id = 1").run()
        try await db.raw(SQLQueryString(guardTrigger.create)).run()
    }

}

/// The triggers that keep the audit log append-only in the database: created by migration 1, lifted and put back by
/// the one rewrite the store ever does (keying the chain, migration 7).
enum AuditGuard {
    static let sqliteNoUpdate =
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    static let postgresAppendOnly =
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION carddesk_audit_append_only()"

    /// The trigger that refuses UPDATE: how to drop it, and how to create it again.
    static func updateTrigger(_ flavour: DatabaseHost.Flavour) -> (drop: String, create: String) {
        switch flavour {
        case .sqlite: ("DROP TRIGGER IF EXISTS audit_events_no_update", sqliteNoUpdate)
        case .postgres: ("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events", postgresAppendOnly)
        }
    }
}
