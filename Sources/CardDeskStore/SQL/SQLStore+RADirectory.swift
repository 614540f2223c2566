public import CardDeskCore
import Foundation
import SQLKit

extension SQLStore: RADirectory {
    /// The user IDs of an organisation's people: employed there, or holding a role there (as `RAPolicy.covers` has it).
    static func people(of organisation: String) -> SQLQueryString {
        """
        SELECT id FROM users WHERE organisation = \(bind: organisation)
        UNION SELECT user_id FROM user_roles WHERE organisation = \(bind: organisation)
        """
    }

    public func findPeople(matching query: String, organisation: String, limit: Int) async throws -> [User] {
        let text = query.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return [] }
        // A name's start, any case (LIKE's wildcards in the query stand for themselves).
        let escaped = text.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
        let prefix = escaped + "%"
        let ids = try await host.read { db in
            try await db.raw("""
                SELECT u.id FROM users u
                WHERE u.id IN (\(Self.people(of: organisation)))
                  AND (u.id = \(bind: text) OR lower(u.given_name) LIKE \(bind: prefix) ESCAPE '\\'
                       OR lower(u.family_name) LIKE \(bind: prefix) ESCAPE '\\'
                       OR lower(u.given_name || ' ' || u.family_name) LIKE \(bind: prefix) ESCAPE '\\')
                ORDER BY u.family_name, u.given_name, u.id
                LIMIT \(bind: limit)
                """).all().map { try $0.decode(column: "id", as: String.self) }
        }
        var people: [User] = []
        for id in ids {
            if let user = try await user(id: try UserID(id)) { people.append(user) }
        }
        return people
    }

    public func auditEntries(subjects: [String], limit: Int) async throws -> [AuditEntry] {
        guard !subjects.isEmpty else { return [] }
        return try await host.read { db in
            var entries: [AuditEntry] = []
            for subject in subjects {
                entries += try await db.raw("SELECT * FROM audit_events WHERE subject = \(bind: subject) ORDER BY seq DESC LIMIT \(bind: limit)")
                    .all().map(Self.auditEntry(from:))
            }
            return Array(entries.sorted { $0.sequence > $1.sequence }.prefix(limit))
        }
    }

    public func certificatesFallingDue(organisation: String, from: Timestamp, to: Timestamp) async throws -> [CertificateFallingDue] {
        try await host.read { db in
            try await db.raw("""
                SELECT c.user_id, u.given_name, u.family_name, c.profile, c.serial, c.card_serial, c.not_after
                FROM certificates c JOIN users u ON u.id = c.user_id
                WHERE u.id IN (\(Self.people(of: organisation))) AND c.status = 'good'
                  AND c.not_after >= \(bind: from.millisecondsSince1970) AND c.not_after < \(bind: to.millisecondsSince1970)
                ORDER BY c.not_after, c.serial
                """).all().map { row in
                CertificateFallingDue(
                    userID: try UserID(try row.decode(column: "user_id", as: String.self)),
                    givenName: try row.decode(column: "given_name", as: String.self),
                    familyName: try row.decode(column: "family_name", as: String.self),
                    profile: CertificateProfileKind(rawValue: try row.decode(column: "profile", as: String.self)) ?? .authentication,
                    serial: try SerialNumber(hex: try row.decode(column: "serial", as: String.self)),
                    cardSerial: try row.decode(column: "card_serial", as: String?.self),
                    notAfter: Timestamp(millisecondsSince1970: try row.decode(column: "not_after", as: Int64.self))
                )
            }
        }
    }

    public func searchAudit(_ filter: AuditFilter, organisation: String, before: Int64?, limit: Int) async throws -> [AuditEntry] {
        // The organisation's people, and their cards, as audit subjects and actors ("user:…", "card:…").
        let people = Self.people(of: organisation)
        var clauses: [SQLQueryString] = ["""
            (a.subject IN (SELECT 'user:' || id FROM (\(people)) p)
             OR a.subject IN (SELECT 'card:' || serial FROM cards WHERE user_id IN (\(people)))
             OR a.actor IN (SELECT 'user:' || id FROM (\(people)) q))
            """]
        if let person = filter.person {
            clauses.append("""
                (a.subject = \(bind: "user:\(person)") OR a.actor = \(bind: "user:\(person)")
                 OR a.subject IN (SELECT 'card:' || serial FROM cards WHERE user_id = \(bind: person.rawValue)))
                """)
        }
        if let card = filter.card { clauses.append("a.subject = \(bind: "card:\(card)")") }
        if let actor = filter.actor { clauses.append("a.actor = \(bind: "user:\(actor)")") }
        if let action = filter.action { clauses.append("a.action = \(bind: action)") }
        if let from = filter.from { clauses.append("a.at >= \(bind: from.millisecondsSince1970)") }
        if let to = filter.to { clauses.append("a.at < \(bind: to.millisecondsSince1970)") }
        if let before { clauses.append("a.seq < \(bind: before)") }
        let query: SQLQueryString = "SELECT a.* FROM audit_events a WHERE " + clauses.joined(separator: " AND ") + " ORDER BY a.seq DESC LIMIT \(bind: limit)"
        return try await host.read { db in
            try await db.raw(query).all().map(Self.auditEntry(from:))
        }
    }
}
