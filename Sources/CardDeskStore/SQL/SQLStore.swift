public import CardDeskCore
public import Crypto
public import Logging
import SQLKit

/// The one store implementation: the same SQL and the same migrations over SQLite and PostgreSQL.
///
/// Every write that matters to security commits together with its audit entry, in one transaction.
public final class SQLStore: Sendable {
    let host: DatabaseHost
    public let location: DatabaseLocation
    /// The audit chain's HMAC key (derived from the master key): who can write the database without it cannot
    /// forge the chain.
    let auditKey: SymmetricKey
    /// The same key, set up once for the entries this store appends.
    let auditMAC: KeyedMAC

    private init(host: DatabaseHost, location: DatabaseLocation, auditKey: SymmetricKey) {
        self.host = host
        self.location = location
        self.auditKey = auditKey
        auditMAC = KeyedMAC(key: auditKey)
    }

    /// Opens (and creates or migrates) the store.
    public static func open(_ location: DatabaseLocation, logger: Logger, now: Timestamp, auditKey: SymmetricKey) async throws -> SQLStore {
        let host = try await DatabaseHost.open(location, logger: logger)
        do {
            try await Migrations.run(on: host, now: now.millisecondsSince1970, auditKey: auditKey)
        } catch let error as CardDeskError {
            try? await host.close()
            throw error
        } catch {
            try? await host.close()
            throw CardDeskError(.storageUnavailable, "Cannot prepare the database \(location): \(String(reflecting: error)).")
        }
        return SQLStore(host: host, location: location, auditKey: auditKey)
    }

    public func close() async throws {
        try await host.close()
    }

    /// Transactions committed since the store was opened, and the commits (disk flushes) they took: concurrent
    /// transactions share commits (group commit).
    public var commitStatistics: (transactions: Int, commits: Int) { host.commitStatistics }

    /// A cheap round trip, for the health endpoint.
    public func ping() async throws {
        try await host.read { try await $0.raw("SELECT 1").run() }
    }

    /// The versions of the schema applied to this database.
    public func appliedMigrations() async throws -> [Int64] {
        try await host.read { db in
            try await db.raw("SELECT version FROM schema_migrations ORDER BY version").all().map { try $0.decode(column: "version", as: Int64.self) }
        }
    }
}

extension SQLStore: UserDirectory {
    public func addUser(_ user: User, audit: AuditEvent) async throws {
        try await host.transaction { db in
            let existing = try await db.raw("SELECT id FROM users WHERE id = \(bind: user.id.rawValue)").first()
            guard existing == nil else {
                throw CardDeskError(.userExists, "User \(user.id) already exists; nothing was changed.")
            }
            try await db.raw("""
                INSERT INTO users (id, given_name, family_name, organisation, status, created_at)
                VALUES (\(bind: user.id.rawValue), \(bind: user.givenName), \(bind: user.familyName), \(bind: user.organisation),
                        \(bind: user.status.rawValue), \(bind: audit.time.millisecondsSince1970))
                """).run()
            for (position, role) in user.roles.enumerated() {
                try await db.raw("""
                    INSERT INTO user_roles (user_id, position, role_code, organisation)
                    VALUES (\(bind: user.id.rawValue), \(bind: position), \(bind: role.code), \(bind: role.organisation))
                    """).run()
            }
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    public func user(id: UserID) async throws -> User? {
        try await host.read { db in try await Self.user(id: id, on: db) }
    }

    /// Adds a role after the user's others, with its audit entry; a role the user holds already is refused.
    public func addRole(_ role: Role, to id: UserID, audit: AuditEvent) async throws {
        try await host.transaction { db in
            guard try await Self.user(id: id, on: db) != nil else {
                throw CardDeskError(.unknownUser, "No person with user ID \(id) is registered.")
            }
            let held = try await db.raw("""
                SELECT position FROM user_roles WHERE user_id = \(bind: id.rawValue) AND role_code = \(bind: role.code) AND organisation = \(bind: role.organisation)
                """).first()
            guard held == nil else { throw CardDeskError(.userExists, "They hold the role \(role) already; nothing was changed.") }
            let next = try await db.raw("SELECT COALESCE(MAX(position), -1) + 1 AS n FROM user_roles WHERE user_id = \(bind: id.rawValue)")
                .first()?.decode(column: "n", as: Int.self) ?? 0
            try await db.raw("""
                INSERT INTO user_roles (user_id, position, role_code, organisation)
                VALUES (\(bind: id.rawValue), \(bind: next), \(bind: role.code), \(bind: role.organisation))
                """).run()
            _ = try await self.appendAudit(audit, on: db)
        }
    }

    static func user(id: UserID, on db: any SQLDatabase) async throws -> User? {
        // The user and their roles in one statement: a row per role (one with no role if they had none).
        let rows = try await db.raw("""
            SELECT u.given_name, u.family_name, u.organisation, u.status, r.role_code, r.organisation AS role_organisation
            FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
            WHERE u.id = \(bind: id.rawValue) ORDER BY r.position
            """).all()
        guard let row = rows.first else { return nil }
        let roles = try rows.compactMap { row -> Role? in
            guard let code = try row.decode(column: "role_code", as: String?.self) else { return nil }
            return try Role(code: code, organisation: try row.decode(column: "role_organisation", as: String.self))
        }
        let statusText = try row.decode(column: "status", as: String.self)
        guard let status = User.Status(rawValue: statusText) else {
            throw CardDeskError(.storageUnavailable, "User \(id) has an unknown status \"\(statusText)\" in the database.")
        }
        return try User(
            id: id,
            givenName: try row.decode(column: "given_name", as: String.self),
            familyName: try row.decode(column: "family_name", as: String.self),
            organisation: try row.decode(column: "organisation", as: String.self),
            roles: roles,
            status: status
        )
    }
}
