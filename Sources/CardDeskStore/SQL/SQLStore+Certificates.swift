public import CardDeskCore
import Foundation
import SQLKit

extension SQLStore: CertificateAuthorityStorage, CertificateStatusReader {
    public func recordIssuance(_ certificate: CertificateRecord, audit: AuditEvent, answer: PresignedOCSPAnswer?, step: RenewalStepWrite?) async throws {
        try await host.transaction { db in
            if let step { try await self.saveRenewal(step.renewal, audit: step.audit, on: db) }
            try await db.raw("""
                INSERT INTO certificates (serial, profile, user_id, card_serial, renewal_id, subject, not_before, not_after, status, der, issued_at)
                VALUES (\(bind: certificate.serial.hex), \(bind: certificate.profile.rawValue), \(bind: certificate.userID.rawValue),
                        \(bind: certificate.cardSerial), \(bind: certificate.renewalID),
                        \(bind: certificate.subject), \(bind: certificate.notBefore.millisecondsSince1970),
                        \(bind: certificate.notAfter.millisecondsSince1970), \(bind: certificate.status.rawValue),
                        \(bind: Data(certificate.der)), \(bind: audit.time.millisecondsSince1970))
                """).run()
            _ = try await self.appendAudit(audit, on: db)
            if let answer, answer.serial == certificate.serial, answer.status == certificate.status {
                try await Self.upsert(answer, on: db)
            }
        }
    }

    public func revoke(
        serial: SerialNumber, reason: RevocationReason, at time: Timestamp, supersededBy: SerialNumber?, byRenewal: String?, audit: AuditEvent,
        answer: PresignedOCSPAnswer?, step: RenewalStepWrite?
    ) async throws -> CertificateRecord {
        try await host.transaction { db in
            guard var record = try await Self.certificate(serial: serial, on: db) else {
                throw CardDeskError(.unknownCertificate, "No certificate with serial \(serial.hex) was issued by this CA; nothing was revoked.")
            }
            guard record.status == .good else {
                let when = record.revokedAt.map { " on \($0)" } ?? ""
                let why = record.revocationReason.map { " (\($0.name))" } ?? ""
                throw CardDeskError(.alreadyRevoked, "Certificate \(serial.hex) was already revoked\(when)\(why); nothing was changed.")
            }
            try await db.raw("""
                UPDATE certificates SET status = 'revoked', revoked_at = \(bind: time.millisecondsSince1970),
                    revocation_reason = \(bind: reason.rawValue), superseded_by = \(bind: supersededBy?.hex)
                WHERE serial = \(bind: serial.hex) AND status = 'good'
                """).run()
            _ = try await self.appendAudit(audit, on: db)
            // Its pre-signed answer said "good": it goes with the revocation, so no instance can read it after; the
            // answer signed ahead saying "revoked" takes its place, when it says what this revocation wrote.
            if let answer, answer.serial == serial, answer.profile == record.profile, answer.status == .revoked {
                try await Self.upsert(answer, on: db)
            } else {
                try await db.raw("DELETE FROM ocsp_responses WHERE serial = \(bind: serial.hex)").run()
            }
            // A revoked certificate vouches for nothing: the card's unfinished renewal (unless it is the renewal
            // making this revocation) stops here, so no certificate it issued or relied on can carry it on.
            if let cardSerial = record.cardSerial {
                let cancelled = try await db.raw("""
                    UPDATE renewals SET status = 'cancelled', version = version + 1, updated_at = \(bind: time.millisecondsSince1970)
                    WHERE card_serial = \(bind: cardSerial) AND status = 'active' AND id <> \(bind: byRenewal ?? "")
                    RETURNING id
                    """).all()
                for row in cancelled {
                    let id = try row.decode(column: "id", as: String.self)
                    _ = try await self.appendAudit(AuditEvent(
                        action: .renewalStep, actor: audit.actor, subject: "card:\(cardSerial)",
                        details: "renewal=\(id) cancelled: certificate \(serial.hex) revoked (\(reason.name))", time: time
                    ), on: db)
                }
            }
            if let step { try await self.saveRenewal(step.renewal, audit: step.audit, on: db) }
            record.status = .revoked
            record.revokedAt = time
            record.revocationReason = reason
            record.supersededBy = supersededBy
            return record
        }
    }

    public func revokedCertificates(profile: CertificateProfileKind) async throws -> [RevokedCertificate] {
        try await host.read { db in
            try await db.raw("""
                SELECT serial, revoked_at, revocation_reason FROM certificates
                WHERE profile = \(bind: profile.rawValue) AND status = 'revoked' ORDER BY revoked_at, serial
                """).all().map { row in
                let reasonCode = try row.decode(column: "revocation_reason", as: Int.self)
                return RevokedCertificate(
                    serial: try SerialNumber(hex: try row.decode(column: "serial", as: String.self)),
                    revokedAt: Timestamp(millisecondsSince1970: try row.decode(column: "revoked_at", as: Int64.self)),
                    reason: RevocationReason(rawValue: reasonCode) ?? .unspecified
                )
            }
        }
    }

    public func nextCRLNumber(profile: CertificateProfileKind) async throws -> Int64 {
        try await host.transaction { db in
            let current = try await db.raw("SELECT number FROM crl_numbers WHERE profile = \(bind: profile.rawValue)")
                .first()?.decode(column: "number", as: Int64.self)
            let next = (current ?? 0) + 1
            if current == nil {
                try await db.raw("INSERT INTO crl_numbers (profile, number) VALUES (\(bind: profile.rawValue), \(bind: next))").run()
            } else {
                try await db.raw("UPDATE crl_numbers SET number = \(bind: next) WHERE profile = \(bind: profile.rawValue)").run()
            }
            return next
        }
    }

    public func certificate(serial: SerialNumber) async throws -> CertificateRecord? {
        try await host.read { db in try await Self.certificate(serial: serial, on: db) }
    }

    /// Every certificate written to one card, newest first.
    public func certificates(cardSerial: String) async throws -> [CertificateRecord] {
        try await host.read { db in
            try await db.raw("SELECT * FROM certificates WHERE card_serial = \(bind: cardSerial) ORDER BY issued_at DESC, serial")
                .all().map(Self.certificateRecord(from:))
        }
    }

    /// The card's good certificates, newest first: what sign-in, renewal and unlock look at (a card that has been
    /// renewed holds as many revoked certificates as good ones, each read with its DER). Every profile is named so that
    /// SQLite's planner searches the card's index on all three of its columns: with `status` alone beside the card, it
    /// walked the index of every good certificate by expiry instead (see QueryPlanTests).
    public func goodCertificates(cardSerial: String) async throws -> [CertificateRecord] {
        let profiles = SQLList(CertificateProfileKind.allCases.map { SQLBind($0.rawValue) })
        return try await host.read { db in
            try await db.raw("""
                SELECT * FROM certificates WHERE card_serial = \(bind: cardSerial) AND profile IN (\(profiles)) AND status = 'good'
                ORDER BY issued_at DESC, serial
                """).all().map(Self.certificateRecord(from:))
        }
    }

    /// Every certificate a renewal issued, newest first.
    public func certificates(renewalID: String) async throws -> [CertificateRecord] {
        try await host.read { db in
            try await db.raw("SELECT * FROM certificates WHERE renewal_id = \(bind: renewalID) ORDER BY issued_at DESC, serial")
                .all().map(Self.certificateRecord(from:))
        }
    }

    /// Every certificate of one user, newest first.
    public func certificates(userID: UserID) async throws -> [CertificateRecord] {
        try await host.read { db in
            try await db.raw("SELECT * FROM certificates WHERE user_id = \(bind: userID.rawValue) ORDER BY issued_at DESC, serial")
                .all().map(Self.certificateRecord(from:))
        }
    }

    /// How many certificates the store holds (for operators and tests).
    public func certificateCount() async throws -> Int {
        try await host.read { db in
            try await db.raw("SELECT count(*) AS n FROM certificates").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    static func certificate(serial: SerialNumber, on db: any SQLDatabase) async throws -> CertificateRecord? {
        guard let row = try await db.raw("SELECT * FROM certificates WHERE serial = \(bind: serial.hex)").first() else { return nil }
        return try certificateRecord(from: row)
    }

    static func certificateRecord(from row: any SQLRow) throws -> CertificateRecord {
        let profileText = try row.decode(column: "profile", as: String.self)
        let statusText = try row.decode(column: "status", as: String.self)
        guard let profile = CertificateProfileKind(rawValue: profileText), let status = CertificateRecord.Status(rawValue: statusText) else {
            throw CardDeskError(.storageUnavailable, "A certificate row has an unknown profile or status (\(profileText), \(statusText)).")
        }
        let reason = try row.decode(column: "revocation_reason", as: Int?.self).flatMap(RevocationReason.init(rawValue:))
        return CertificateRecord(
            serial: try SerialNumber(hex: try row.decode(column: "serial", as: String.self)),
            profile: profile,
            userID: try UserID(try row.decode(column: "user_id", as: String.self)),
            subject: try row.decode(column: "subject", as: String.self),
            notBefore: Timestamp(millisecondsSince1970: try row.decode(column: "not_before", as: Int64.self)),
            notAfter: Timestamp(millisecondsSince1970: try row.decode(column: "not_after", as: Int64.self)),
            status: status,
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(Timestamp.init(millisecondsSince1970:)),
            revocationReason: reason,
            supersededBy: try row.decode(column: "superseded_by", as: String?.self).map { try SerialNumber(hex: $0) },
            cardSerial: try row.decode(column: "card_serial", as: String?.self),
            renewalID: try row.decode(column: "renewal_id", as: String?.self),
            der: Array(try row.decode(column: "der", as: Data.self))
        )
    }
}

extension SQLStore: OCSPAnswerStore {
    public func presignedAnswer(serial: SerialNumber) async throws -> PresignedOCSPAnswer? {
        try await host.read { db in
            guard let row = try await db.raw("SELECT * FROM ocsp_responses WHERE serial = \(bind: serial.hex)").first() else { return nil }
            let profileText = try row.decode(column: "profile", as: String.self)
            let statusText = try row.decode(column: "status", as: String.self)
            guard let profile = CertificateProfileKind(rawValue: profileText), let status = CertificateRecord.Status(rawValue: statusText) else { return nil }
            return PresignedOCSPAnswer(
                serial: serial, profile: profile, status: status, der: Array(try row.decode(column: "der", as: Data.self)),
                thisUpdate: Timestamp(millisecondsSince1970: try row.decode(column: "this_update", as: Int64.self)),
                nextUpdate: Timestamp(millisecondsSince1970: try row.decode(column: "next_update", as: Int64.self)),
                refreshAfter: Timestamp(millisecondsSince1970: try row.decode(column: "refresh_after", as: Int64.self))
            )
        }
    }

    public func savePresignedAnswers(_ answers: [PresignedOCSPAnswer]) async throws {
        guard !answers.isEmpty else { return }
        // PostgreSQL: FOR SHARE waits for a revocation in flight on the row and then sees its outcome, so an answer
        // saying "good" cannot be stored after the revocation that deleted the previous one. (SQLite: one writer.)
        let lock = host.flavour == .postgres ? " FOR SHARE" : ""
        try await host.transaction(durable: false) { db in
            for answer in answers {
                let current = try await db.raw(SQLQueryString("SELECT status FROM certificates WHERE serial = ") + "\(bind: answer.serial.hex)" + SQLQueryString(lock))
                    .first()?.decode(column: "status", as: String.self)
                guard current == answer.status.rawValue else { continue }
                try await Self.upsert(answer, on: db)
            }
        }
    }

    static func upsert(_ answer: PresignedOCSPAnswer, on db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO ocsp_responses (serial, profile, status, der, this_update, next_update, refresh_after)
            VALUES (\(bind: answer.serial.hex), \(bind: answer.profile.rawValue), \(bind: answer.status.rawValue), \(bind: Data(answer.der)),
                    \(bind: answer.thisUpdate.millisecondsSince1970), \(bind: answer.nextUpdate.millisecondsSince1970),
                    \(bind: answer.refreshAfter.millisecondsSince1970))
            ON CONFLICT (serial) DO UPDATE SET profile = excluded.profile, status = excluded.status, der = excluded.der,
                this_update = excluded.this_update, next_update = excluded.next_update, refresh_after = excluded.refresh_after
            """).run()
    }

    public func certificatesWithAnswersDue(at now: Timestamp, limit: Int) async throws -> [CertificateRecord] {
        try await host.read { db in
            try await db.raw("""
                SELECT c.* FROM ocsp_responses o JOIN certificates c ON c.serial = o.serial
                WHERE o.refresh_after <= \(bind: now.millisecondsSince1970) ORDER BY o.refresh_after LIMIT \(bind: limit)
                """).all().map(Self.certificateRecord(from:))
        }
    }

    public func deletePresignedAnswers(_ serials: [SerialNumber]) async throws {
        guard !serials.isEmpty else { return }
        try await host.transaction(durable: false) { db in
            for serial in serials {
                try await db.raw("DELETE FROM ocsp_responses WHERE serial = \(bind: serial.hex)").run()
            }
        }
    }

    public func revocations(after sequence: Int64, limit: Int) async throws -> [(sequence: Int64, serial: SerialNumber)] {
        try await host.read { db in
            try await db.raw("""
                SELECT seq, subject FROM audit_events WHERE action = 'certificate.revoke' AND seq > \(bind: sequence) ORDER BY seq LIMIT \(bind: limit)
                """).all().compactMap { row in
                let subject = try row.decode(column: "subject", as: String.self)
                guard subject.hasPrefix("certificate:"), let serial = try? SerialNumber(hex: String(subject.dropFirst("certificate:".count))) else { return nil }
                return (try row.decode(column: "seq", as: Int64.self), serial)
            }
        }
    }

    public func currentAuditSequence() async throws -> Int64 {
        try await auditHead()?.sequence ?? 0
    }
}
