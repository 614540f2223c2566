public import CardDeskCore
import Foundation
import SQLKit

extension SQLStore: RADirectory {
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
                WHERE (u.organisation = \(bind: organisation)
                       OR EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.organisation = \(bind: organisation)))
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
                WHERE u.organisation = \(bind: organisation) AND c.status = 'good'
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
}
