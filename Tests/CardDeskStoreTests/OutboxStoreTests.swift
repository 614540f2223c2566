import CardDeskCore
import CardDeskStore
import Foundation
import Testing

/// One-time codes and the outbox, on SQLite and PostgreSQL.
@Suite("Storage: codes and outbox")
struct OutboxStoreTests {
    static func code(_ user: User, at time: Timestamp) -> (OneTimeCodeRecord, OutboxMessage) {
        let id = UUID().uuidString
        return (
            OneTimeCodeRecord(
                id: id, purpose: .confirmContact, userID: user.id, cardSerial: nil, channel: .email, recipient: "jane@nhs.net",
                codeHash: "h", createdAt: time, expiresAt: time.adding(seconds: 900)
            ),
            OutboxMessage(id: "m-" + id, channel: .email, recipient: "jane@nhs.net", subject: "s", bodySealed: [1, 2, 3], createdAt: time, nextAttemptAt: time)
        )
    }

    @Test("At most three codes an hour; a due message is claimed by one worker only; sent bodies are wiped", arguments: TestBackend.available)
    func limitsAndClaims(backend: TestBackend) async throws {
        try await backend.withStore { store in
            let user = try Fixtures.user()
            try await store.addUser(user, audit: Fixtures.event(.userAdd))
            let start = Timestamp(secondsSince1970: 1_800_000_000)
            for minute in 0..<3 {
                let (code, message) = Self.code(user, at: start.adding(seconds: Int64(minute) * 60))
                try await store.addCode(code, message: message, audit: Fixtures.event(.codeSend), limit: 3)
            }
            let (fourth, fourthMessage) = Self.code(user, at: start.adding(seconds: 30 * 60))
            let limited = await #expect(throws: CodeLimitReached.self) {
                try await store.addCode(fourth, message: fourthMessage, audit: Fixtures.event(.codeSend), limit: 3)
            }
            #expect(limited?.retryAfter == start.adding(seconds: 3600))
            #expect(try await store.code(id: fourth.id) == nil)

            let due = try await store.dueMessages(now: start.adding(seconds: 3 * 60), limit: 10)
            #expect(due.count == 3)
            let first = try #require(due.first)
            #expect(try await store.claimMessage(first, leaseUntil: start.adding(seconds: 500)))
            #expect(try await store.claimMessage(first, leaseUntil: start.adding(seconds: 500)) == false, "the second worker gets nothing")
            try await store.markSent(id: first.id, at: start.adding(seconds: 200))
            let remaining = try await store.dueMessages(now: start.adding(seconds: 10_000), limit: 10)
            #expect(remaining.map(\.id).sorted() == due.dropFirst().map(\.id).sorted())
        }
    }
}
