import CardDeskAPI
import CardDeskCore
import CardDeskServerKit
import Foundation
import Testing

/// Item 3 (and 9): an unauthenticated client cannot grow the database through the audit log, and hammering an
/// endpoint ends in HTTP 429 with Retry-After, audited once per window.
@Suite("Security: audit log flooding, body limits and rate limits")
struct AuditFloodTests {
    @Test("A 1.9 MB card serial is refused before anything is stored: 413 for the body, 400 for a long serial; the log does not grow")
    func hugeSerial() async throws {
        try await SecurityFixture.with { fixture in
            try await HTTPServer.with(fixture.instance) { base in
                let before = try await auditCount(fixture)
                let huge = String(repeating: "A", count: 1_900_000)
                let big = try await HTTPServer.post(base, "/api/v1/sessions", json: ["cardSerial": huge, "challenge": "x", "signature": ""])
                #expect(big.status == 413)
                let long = try await HTTPServer.post(base, "/api/v1/sessions", json: ["cardSerial": String(repeating: "B", count: 5_000), "challenge": "x", "signature": ""])
                #expect(long.status == 400)
                #expect(long.body.contains("not a card serial number"))
                for path in ["/api/v1/unlock/options", "/api/v1/unlock/codes", "/api/v1/renewals"] {
                    let answer = try await HTTPServer.post(base, path, json: ["cardSerial": String(repeating: "C", count: 5_000), "channel": "email", "challenge": "x", "signature": ""])
                    #expect(answer.status == 400, "\(path) took a 5,000-character serial")
                }
                #expect(try await auditCount(fixture) == before, "nothing was audited for requests refused on their form")
            }
        }
    }

    @Test("Every audit field is capped, whatever the caller passes")
    func auditFieldsCapped() {
        let event = AuditEvent(
            action: .login, actor: String(repeating: "a", count: 10_000), subject: String(repeating: "s", count: 10_000),
            details: String(repeating: "d", count: 100_000), time: Timestamp(secondsSince1970: 0)
        )
        #expect(event.actor.count == AuditEvent.maximumNameLength && event.subject.count == AuditEvent.maximumNameLength)
        #expect(event.details.count == AuditEvent.maximumDetailsLength && event.details.hasSuffix("[truncated]"))
    }

    @Test("Sign-in challenges from one address: 429 with Retry-After past the limit, one audit entry per window", arguments: Backend.available)
    func rateLimited(_ backend: Backend) async throws {
        try await SecurityFixture.with(backend, flags: ["rate.limit.percent": "10"]) { fixture in
            try await HTTPServer.with(fixture.instance) { base in
                // 10 % of 120 challenges a minute: 12 pass, the rest are refused until the window ends.
                var statuses: [Int] = []
                var retryAfter: String?
                for _ in 0..<30 {
                    let answer = try await HTTPServer.post(base, "/api/v1/login/challenges", json: [:])
                    statuses.append(answer.status)
                    if answer.status == 429 { retryAfter = answer.retryAfter }
                }
                #expect(statuses.prefix(12).allSatisfy { $0 == 200 })
                #expect(statuses.dropFirst(12).allSatisfy { $0 == 429 })
                let seconds = try #require(retryAfter.flatMap { Int($0) })
                #expect((1...60).contains(seconds))
                #expect(try await fixture.audit(.rateLimit).count == 1, "18 refusals, one audit entry")
                // The next window starts afresh.
                fixture.clock.advance(seconds: 61)
                #expect(try await HTTPServer.post(base, "/api/v1/login/challenges", json: [:]).status == 200)
            }
        }
    }

    private func auditCount(_ fixture: SecurityFixture) async throws -> Int64 {
        try await fixture.instance.store.auditHead()?.sequence ?? 0
    }
}

/// OCSP is counted in memory and added to the store in batches, so the limit costs no store write on most requests.
@Suite("Security: batched rate limit on OCSP")
struct OCSPRateLimitTests {
    @Test("At 1 % of the limits, 60 OCSP requests a minute pass and the rest get 429; the store holds the counts and one audit entry")
    func ocspLimited() async throws {
        try await SecurityFixture.with(flags: ["rate.limit.percent": "1"]) { fixture in
            try await HTTPServer.with(fixture.instance) { base in
                var statuses: [Int] = []
                for _ in 0..<100 { statuses.append(try await HTTPServer.send(base, "/ocsp/MAA%3D", method: "GET").status) }
                #expect(statuses.prefix(60).allSatisfy { $0 == 200 }, "\(statuses)")
                #expect(statuses.dropFirst(60).allSatisfy { $0 == 429 }, "\(statuses)")
                #expect(try await fixture.audit(.rateLimit).count == 1)
            }
        }
    }
}
