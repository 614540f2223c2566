import CardDeskCore
import CardDeskStore
import Foundation
import Testing

/// The storage suite: the same tests against SQLite and a real PostgreSQL server.
@Suite("Storage")
struct StoreTests {
    @Test("PostgreSQL is configured when the suite requires it")
    func postgresIsConfiguredWhenRequired() {
        if ProcessInfo.processInfo.environment["CARDDESK_REQUIRE_POSTGRES"] == "1" {
            #expect(TestBackend.postgresURL != nil, "CARDDESK_REQUIRE_POSTGRES=1 but CARDDESK_TEST_POSTGRES_URL is not set")
        }
    }

    @Test("A user is stored with all roles, in order", arguments: TestBackend.available)
    func userRoundTrip(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))

            let loaded = try #require(try await store.user(id: user.id))
            #expect(loaded == user)
            #expect(loaded.roles.map(\.description) == ["S0080:G0450:R5080@RBQ", "S0080:G0450:R8000@RBQ"])
            #expect(try await store.user(id: try UserID("999999999999")) == nil)
        }
    }

    @Test("The RA console's reads: people of one organisation by ID or name start (any case, wildcards literal), and the audit entries about a person", arguments: TestBackend.available)
    func raDirectory(backend: TestBackend) async throws {
        try await backend.withStore { store in
            try await store.addUser(try Fixtures.user(), audit: Fixtures.event(.userAdd))
            try await store.addUser(try Fixtures.user("555254600107", given: "Janet", family: "O'Dowd"), audit: Fixtures.event(.userAdd, subject: "user:555254600107"))
            try await store.addUser(try Fixtures.user("555254600108", given: "Percy", family: "Cent"), audit: Fixtures.event(.userAdd, subject: "user:555254600108"))
            let elsewhere = try User(id: try UserID("555254600109"), givenName: "Jane", familyName: "Away", organisation: "RXH", roles: [try Role(parsing: "R8000@RXH")])
            try await store.addUser(elsewhere, audit: Fixtures.event(.userAdd, subject: "user:555254600109"))
            let visiting = try User(id: try UserID("555254600110"), givenName: "Jan", familyName: "Visit", organisation: "RXH", roles: [try Role(parsing: "R8000@RXH"), try Role(parsing: "R8000@RBQ")])
            try await store.addUser(visiting, audit: Fixtures.event(.userAdd, subject: "user:555254600110"))

            func found(_ query: String) async throws -> [String] {
                try await store.findPeople(matching: query, organisation: "RBQ", limit: 10).map(\.id.rawValue)
            }
            // By family name (Cent, Doe, O'Dowd, Visit); an RXH employee with a role at RBQ is in RBQ; Jane Away is not.
            #expect(try await found("JAN") == ["555254600106", "555254600107", "555254600110"])
            #expect(try await found("o'd") == ["555254600107"])
            #expect(try await found("jane doe") == ["555254600106"])
            #expect(try await found("555254600108") == ["555254600108"])
            #expect(try await found("555254600109") == [], "another organisation's person, even by ID")
            #expect(try await found("%") == [], "LIKE's wildcard stands for itself")
            #expect(try await found("_ane") == [])
            #expect(try await found("  ") == [])
            #expect(try await store.findPeople(matching: "j", organisation: "RBQ", limit: 2).count == 2)

            _ = try await store.appendAudit(Fixtures.event(.login, subject: "card:CD01", details: "card event"))
            _ = try await store.appendAudit(Fixtures.event(.login, subject: "user:555254600106", details: "user event"))
            let history = try await store.auditEntries(subjects: ["user:555254600106", "card:CD01"], limit: 10)
            #expect(history.map(\.event.details) == ["user event", "card event", ""], "newest first, both subjects")
            #expect(try await store.auditEntries(subjects: ["user:555254600106", "card:CD01"], limit: 2).count == 2)
            #expect(try await store.cards(userID: try UserID("555254600106")).isEmpty)

            // Audit search: the organisation's entries only, by person, action and time, paged by sequence.
            let jane = try await store.searchAudit(AuditFilter(person: try UserID("555254600106")), organisation: "RBQ", before: nil, limit: 10)
            #expect(jane.map(\.event.details) == ["user event", ""])
            #expect(try await store.searchAudit(AuditFilter(person: try UserID("555254600106")), organisation: "RXH", before: nil, limit: 10).isEmpty)
            let away = try await store.searchAudit(AuditFilter(), organisation: "RXH", before: nil, limit: 10)
            #expect(away.map(\.event.subject) == ["user:555254600110", "user:555254600109"])
            // Jan Visit (employed by RXH, with a role at RBQ) is one of RBQ's people too.
            #expect(try await store.searchAudit(AuditFilter(person: try UserID("555254600110")), organisation: "RBQ", before: nil, limit: 10).count == 1)
            let logins = try await store.searchAudit(AuditFilter(action: "login"), organisation: "RBQ", before: nil, limit: 10)
            #expect(logins.map(\.event.details) == ["user event"], "the card event is about no card of RBQ's people")
            let olderThanFirst = try await store.searchAudit(AuditFilter(), organisation: "RBQ", before: jane[1].sequence, limit: 10)
            #expect(olderThanFirst.isEmpty)
            #expect(try await store.searchAudit(AuditFilter(from: Fixtures.now.adding(seconds: 1)), organisation: "RBQ", before: nil, limit: 10).isEmpty)
            #expect(try await store.searchAudit(AuditFilter(to: Fixtures.now.adding(seconds: 1)), organisation: "RBQ", before: nil, limit: 10).count == 5)
        }
    }

    @Test("Expiry reminders: cards by their earliest good certificate's expiry, with the confirmed email; each recorded once", arguments: TestBackend.available)
    func reminderRecords(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))
            try await store.saveContacts(ContactDetails(userID: user.id, email: "jane.doe@nhs.net", emailConfirmed: true), audit: Fixtures.event(.contactsUpdate))
            try await store.addCard(
                CardRecord(serial: "CD01", userID: user.id, keyAlgorithm: "p256", managementKeySealed: [1], pukSealed: [2], createdAt: Fixtures.now),
                audit: Fixtures.event(.raAction)
            )
            for (serial, days) in [("0A", 40), ("0B", 20)] {
                let record = CertificateRecord(
                    serial: try SerialNumber(hex: serial), profile: serial == "0A" ? .authentication : .signing, userID: user.id, subject: "CN=x",
                    notBefore: Fixtures.now, notAfter: Fixtures.now.adding(seconds: Int64(days) * 86_400), cardSerial: "CD01", der: [0x30, 0x00]
                )
                try await store.recordIssuance(record, audit: Fixtures.event(.certificateIssue))
            }
            let due = try await store.cardsExpiring(after: Fixtures.now, until: Fixtures.now.adding(seconds: 90 * 86_400), limit: 10)
            #expect(due == [ExpiringCard(cardSerial: "CD01", userID: user.id, givenName: "Jane", notAfter: Fixtures.now.adding(seconds: 20 * 86_400), email: "jane.doe@nhs.net")])
            #expect(try await store.cardsExpiring(after: Fixtures.now, until: Fixtures.now.adding(seconds: 10 * 86_400), limit: 10).isEmpty)
            let message = OutboxMessage(id: "m1", channel: .email, recipient: "jane.doe@nhs.net", subject: "s", bodySealed: [1], createdAt: Fixtures.now, nextAttemptAt: Fixtures.now)
            #expect(try await store.recordReminder(card: "CD01", days: 30, notAfter: due[0].notAfter, message: message, audit: Fixtures.event(.expiryReminder)))
            let again = OutboxMessage(id: "m2", channel: .email, recipient: "jane.doe@nhs.net", subject: "s", bodySealed: [1], createdAt: Fixtures.now, nextAttemptAt: Fixtures.now)
            #expect(try await !store.recordReminder(card: "CD01", days: 30, notAfter: due[0].notAfter, message: again, audit: Fixtures.event(.expiryReminder)))
            #expect(try await store.dueMessages(now: Fixtures.now, limit: 10).map(\.id) == ["m1"], "the second is not queued")
            // The signing certificate revoked (renewed): the card's earliest good one is now the other.
            _ = try await store.revoke(serial: try SerialNumber(hex: "0B"), reason: .superseded, at: Fixtures.now, supersededBy: nil, byRenewal: nil, audit: Fixtures.event(.certificateRevoke))
            #expect(try await store.cardsExpiring(after: Fixtures.now, until: Fixtures.now.adding(seconds: 90 * 86_400), limit: 10).map(\.notAfter) == [Fixtures.now.adding(seconds: 40 * 86_400)])
        }
    }

    @Test("Adding a user twice is refused and writes nothing", arguments: TestBackend.available)
    func duplicateUser(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))
            let headBefore = try await store.auditHead()

            await #expect(throws: CardDeskError.self) {
                try await store.addUser(try Fixtures.user(given: "Other"), audit: Fixtures.event(.userAdd))
            }
            #expect(try await store.user(id: user.id)?.givenName == "Jane")
            #expect(try await store.auditHead()?.sequence == headBefore?.sequence)
        }
    }

    @Test("Issuance and its audit entry commit together or not at all", arguments: TestBackend.available)
    func issuanceIsAtomic(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))
            let record = try Fixtures.certificate(serial: "0A1B2C", user: user.id)
            try await store.recordIssuance(record, audit: Fixtures.event(.certificateIssue))
            #expect(try await store.certificate(serial: record.serial) == record)
            #expect(try await store.auditHead()?.sequence == 2)

            // The same serial again fails on the certificate insert: the audit entry must not survive.
            await #expect(throws: (any Error).self) {
                try await store.recordIssuance(record, audit: Fixtures.event(.certificateIssue, details: "second"))
            }
            #expect(try await store.auditHead()?.sequence == 2)
            #expect(try await store.certificateCount() == 1)

            // A certificate for an unknown user violates the foreign key: nothing is written.
            let orphan = try Fixtures.certificate(serial: "0D0E", user: try UserID("111111111111"))
            await #expect(throws: (any Error).self) {
                try await store.recordIssuance(orphan, audit: Fixtures.event(.certificateIssue))
            }
            #expect(try await store.certificate(serial: orphan.serial) == nil)
            #expect(try await store.auditHead()?.sequence == 2)
        }
    }

    @Test("Revocation records time and reason; revoking twice or an unknown serial is refused", arguments: TestBackend.available)
    func revocation(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))
            let record = try Fixtures.certificate(serial: "7F00FF", user: user.id, profile: .signing)
            try await store.recordIssuance(record, audit: Fixtures.event(.certificateIssue))

            let when = Fixtures.now.adding(seconds: 60)
            let revoked = try await store.revoke(serial: record.serial, reason: .keyCompromise, at: when, supersededBy: nil, byRenewal: nil, audit: Fixtures.event(.certificateRevoke))
            #expect(revoked.status == .revoked)
            #expect(try await store.certificate(serial: record.serial)?.revocationReason == .keyCompromise)
            #expect(try await store.revokedCertificates(profile: .signing) == [RevokedCertificate(serial: record.serial, revokedAt: when, reason: .keyCompromise)])
            #expect(try await store.revokedCertificates(profile: .authentication).isEmpty)

            let again = await #expect(throws: CardDeskError.self) {
                try await store.revoke(serial: record.serial, reason: .superseded, at: when, supersededBy: nil, byRenewal: nil, audit: Fixtures.event(.certificateRevoke))
            }
            #expect(again?.code == .alreadyRevoked)
            let unknown = await #expect(throws: CardDeskError.self) {
                try await store.revoke(serial: try SerialNumber(hex: "ABCDEF"), reason: .superseded, at: when, supersededBy: nil, byRenewal: nil, audit: Fixtures.event(.certificateRevoke))
            }
            #expect(unknown?.code == .unknownCertificate)
            #expect(try await store.certificate(serial: record.serial)?.revocationReason == .keyCompromise)
            #expect(try await store.auditHead()?.sequence == 3)
        }
    }

    @Test("CRL numbers increase per issuing CA and survive reopening", arguments: TestBackend.available)
    func crlNumbers(backend: TestBackend) async throws {
        let location = try backend.freshLocation()
        let store = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        #expect(try await store.nextCRLNumber(profile: .authentication) == 1)
        #expect(try await store.nextCRLNumber(profile: .authentication) == 2)
        #expect(try await store.nextCRLNumber(profile: .signing) == 1)
        try await store.close()
        let reopened = try await SQLStore.open(location, logger: .init(label: "test"), now: Fixtures.now, auditKey: Fixtures.auditKey)
        #expect(try await reopened.nextCRLNumber(profile: .authentication) == 3)
        #expect(try await reopened.appliedMigrations() == Array(1...14))
        try await reopened.close()
    }

    @Test("Concurrent appends form one unbroken audit chain", arguments: TestBackend.available)
    func concurrentAudit(backend: TestBackend) async throws {
        try await backend.withStore { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask { try await store.appendAudit(Fixtures.event(details: "n=\(index)")) }
                }
                try await group.waitForAll()
            }
            #expect(try await store.verifyAuditChain() == .intact(entries: 50))
        }
    }

    @Test("A pre-signed OCSP answer is stored only while its status holds, goes with a revocation, and revocations are found by sequence", arguments: TestBackend.available)
    func presignedAnswers(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))
            let record = try Fixtures.certificate(serial: "0A1B2C", user: user.id)
            try await store.recordIssuance(record, audit: Fixtures.event(.certificateIssue))
            let start = try await store.currentAuditSequence()
            func answer(_ status: CertificateRecord.Status, der: UInt8) -> PresignedOCSPAnswer {
                PresignedOCSPAnswer(serial: record.serial, profile: .authentication, status: status, der: [0x30, der], thisUpdate: Fixtures.now,
                                    nextUpdate: Fixtures.now.adding(seconds: 3600), refreshAfter: Fixtures.now.adding(seconds: 1800))
            }
            try await store.savePresignedAnswers([answer(.good, der: 1)])
            #expect(try await store.presignedAnswer(serial: record.serial) == answer(.good, der: 1))
            // A "revoked" answer for a good certificate is not kept.
            try await store.savePresignedAnswers([answer(.revoked, der: 2)])
            #expect(try await store.presignedAnswer(serial: record.serial)?.der == [0x30, 1])
            #expect(try await store.certificatesWithAnswersDue(at: Fixtures.now.adding(seconds: 1799), limit: 10).isEmpty)
            #expect(try await store.certificatesWithAnswersDue(at: Fixtures.now.adding(seconds: 1800), limit: 10).map(\.serial) == [record.serial])

            _ = try await store.revoke(serial: record.serial, reason: .keyCompromise, at: Fixtures.now, supersededBy: nil, byRenewal: nil,
                                       audit: Fixtures.event(.certificateRevoke, subject: "certificate:\(record.serial.hex)"))
            #expect(try await store.presignedAnswer(serial: record.serial) == nil, "the good answer went with the revocation")
            // Signed before the revocation, saved after it: refused.
            try await store.savePresignedAnswers([answer(.good, der: 3)])
            #expect(try await store.presignedAnswer(serial: record.serial) == nil)
            try await store.savePresignedAnswers([answer(.revoked, der: 4)])
            #expect(try await store.presignedAnswer(serial: record.serial)?.der == [0x30, 4])
            let revocations = try await store.revocations(after: start, limit: 10)
            #expect(revocations.map(\.serial) == [record.serial] && revocations.first!.sequence == start + 1)
            #expect(try await store.revocations(after: start + 1, limit: 10).isEmpty)
            try await store.deletePresignedAnswers([record.serial])
            #expect(try await store.presignedAnswer(serial: record.serial) == nil)
        }
    }

    @Test("Concurrent transactions share commits; a refused one is rolled back alone, the others are all written", arguments: TestBackend.available)
    func groupCommit(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let before = store.commitStatistics
            // 150 users at once, every tenth ID given twice: exactly one of each pair must win, and a refused
            // transaction (its user insert and its audit entry) must leave nothing while its batch commits.
            let ids = (0..<150).map { String(format: "5552546%05d", $0 % 10 == 9 ? $0 - 1 : $0) }
            let outcomes = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                for (index, id) in ids.enumerated() {
                    group.addTask {
                        let user = try User(id: try UserID(id), givenName: "Given", familyName: "Doe", organisation: "RBQ",
                                            roles: [try Role(parsing: "S0080:G0450:R8000@RBQ")])
                        do {
                            try await store.addUser(user, audit: Fixtures.event(.userAdd, subject: "user:\(id)", details: "n=\(index)"))
                            return (id, true)
                        } catch let error as CardDeskError where error.code == .userExists {
                            return (id, false)
                        }
                    }
                }
                return try await group.reduce(into: [(String, Bool)]()) { $0.append($1) }
            }
            let distinct = Set(ids)
            #expect(outcomes.filter(\.1).count == distinct.count, "one success per distinct ID")
            #expect(Set(outcomes.filter(\.1).map(\.0)) == distinct)
            #expect(outcomes.filter { !$0.1 }.count == ids.count - distinct.count)
            for id in distinct { #expect(try await store.user(id: try UserID(id)) != nil, "user \(id) acknowledged but not stored") }
            // One audit entry per stored user, chained without a gap.
            #expect(try await store.verifyAuditChain() == .intact(entries: Int64(distinct.count)))
            let after = store.commitStatistics
            let transactions = after.transactions - before.transactions
            let commits = after.commits - before.commits
            #expect(transactions == ids.count)
            #expect(commits < transactions / 2, "concurrent transactions must share commits: \(transactions) in \(commits) commits")
        }
    }
}

@Suite("Storage: abandoned enrolments")
struct AbandonedEnrolmentStoreTests {
    @Test("An expired, unfinished enrolment is found once; ending it cancels the card; a completed one is never found", arguments: TestBackend.available)
    func abandonedEnrolments(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))
            let now = Fixtures.now
            func enrolment(_ id: String, serial: String, expiresIn seconds: Int64) async throws -> EnrolmentRecord {
                let record = EnrolmentRecord(
                    id: id, tokenHash: "hash-\(id)", userID: user.id, keyAlgorithm: "p256", validityDays: nil, cardSerial: nil, status: .open,
                    createdAt: now, expiresAt: now.adding(seconds: seconds)
                )
                try await store.addEnrolment(record, audit: Fixtures.event(.cardEnrol))
                let card = CardRecord(serial: serial, userID: user.id, status: .enrolling, keyAlgorithm: "p256", managementKeySealed: [1], pukSealed: [2], createdAt: now)
                #expect(try await store.attachCard(card, toEnrolment: id, audit: Fixtures.event(.cardEnrol)))
                var certificate = try Fixtures.certificate(serial: "\(serial.suffix(4))01", user: user.id)
                certificate.cardSerial = serial
                try await store.recordIssuance(certificate, audit: Fixtures.event(.certificateIssue))
                return record
            }
            let left = try await enrolment("left", serial: "CD00000000000000A1", expiresIn: -60)
            let finished = try await enrolment("finished", serial: "CD00000000000000A2", expiresIn: -60)
            _ = try await enrolment("fresh", serial: "CD00000000000000A3", expiresIn: 3600)
            #expect(try await store.completeEnrolment(id: finished.id, cardSerial: "CD00000000000000A2", audit: Fixtures.event(.cardEnrol)))

            #expect(try await store.abandonedEnrolments(before: now, limit: 10).map(\.id) == ["left"])
            #expect(try await store.abandonEnrolment(id: left.id, cardSerial: "CD00000000000000A1", audit: Fixtures.event(.cardEnrol)))
            #expect(try await !store.abandonEnrolment(id: left.id, cardSerial: "CD00000000000000A1", audit: Fixtures.event(.cardEnrol)), "ended once")
            #expect(try await !store.completeEnrolment(id: left.id, cardSerial: "CD00000000000000A1", audit: Fixtures.event(.cardEnrol)), "an ended enrolment cannot complete")
            #expect(try await store.card(serial: "CD00000000000000A1")?.status == .cancelled)
            // Still listed while its card keeps a valid certificate (the sweep revokes it next), then not.
            let stillListed = try await store.abandonedEnrolments(before: now, limit: 10)
            #expect(stillListed.map(\.id) == ["left"] && stillListed.first?.status == .expired)
            let serial = try SerialNumber(hex: "A101")
            _ = try await store.revoke(serial: serial, reason: .cessationOfOperation, at: now, supersededBy: nil, byRenewal: nil, audit: Fixtures.event(.certificateRevoke))
            #expect(try await store.abandonedEnrolments(before: now, limit: 10).isEmpty)
        }
    }
}
