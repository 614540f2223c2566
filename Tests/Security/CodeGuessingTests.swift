import CardDeskCore
import Foundation
import Testing

/// Item 1: the five-tries limit of a one-time code holds under any number of guesses at once.
@Suite("Security: one-time codes under concurrent guessing")
struct CodeGuessingTests {
    @Test("200 parallel wrong guesses: at most 5 are checked, the code is void, and the right code afterwards is refused", arguments: Backend.available)
    func parallelGuesses(_ backend: Backend) async throws {
        try await SecurityFixture.with(backend) { fixture in
            let unlock = fixture.instance.unlock
            _ = try await unlock.setContacts(userID: fixture.user, email: "jane.doe@nhs.net", mobile: nil, actor: "test")
            let card = try await fixture.issueCard("guessed")
            for _ in 0..<3 { try? await card.verifyPIN("000000") }
            let sent = try await unlock.requestCode(cardSerial: try await card.serial(), channel: .email)
            let rightCode = try #require(try await rightCodeFor(sent.unlockID, fixture))

            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for guess in 0..<200 {
                    let wrong = String(format: "%06d", (Int(rightCode)! + 1 + guess) % 1_000_000)
                    group.addTask {
                        do {
                            _ = try await unlock.verify(unlockID: sent.unlockID, code: wrong)
                            return "accepted"
                        } catch let error as CardDeskError {
                            return error.code.name
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            let checked = outcomes.filter { $0 == "wrongCode" || $0 == "codeVoided" }.count
            let wrongEntries = try await fixture.audit(.codeCheck).filter { $0.contains("wrong code") }
            #expect(!outcomes.contains("accepted"))
            #expect(wrongEntries.count <= 5, "at most five guesses may be compared with the code")
            #expect(wrongEntries.count == 5)
            #expect(outcomes.filter { $0 == "wrongCode" }.count == 4, "the first four wrong guesses say how many tries are left")
            #expect(checked == 200, "every other guess is refused as void: \(Dictionary(grouping: outcomes, by: { $0 }).mapValues(\.count))")
            let record = try #require(try await fixture.instance.store.code(id: sent.unlockID))
            #expect(record.voidedAt != nil && record.usedAt == nil)

            let late = await #expect(throws: CardDeskError.self) { try await unlock.verify(unlockID: sent.unlockID, code: rightCode) }
            #expect(late?.code == .codeVoided)
        }
    }

    @Test("A burst of wrong guesses with the right code among them: the right code wins only if it is among the first five checked", arguments: Backend.available)
    func burstWithTheRightCode(_ backend: Backend) async throws {
        try await SecurityFixture.with(backend) { fixture in
            let unlock = fixture.instance.unlock
            _ = try await unlock.setContacts(userID: fixture.user, email: "jane.doe@nhs.net", mobile: nil, actor: "test")
            let card = try await fixture.issueCard("burst")
            let sent = try await unlock.requestCode(cardSerial: try await card.serial(), channel: .email)
            let rightCode = try #require(try await rightCodeFor(sent.unlockID, fixture))
            let guesses = (0..<40).map { String(format: "%06d", (Int(rightCode)! + 1 + $0) % 1_000_000) } + [rightCode]
            let accepted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for guess in guesses.shuffled() {
                    group.addTask { (try? await unlock.verify(unlockID: sent.unlockID, code: guess)) != nil }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            let record = try #require(try await fixture.instance.store.code(id: sent.unlockID))
            #expect(accepted <= 1)
            #expect(record.failedAttempts <= 5, "no more than five attempts were ever taken")
            if accepted == 1 { #expect(record.usedAt != nil && record.voidedAt == nil) } else { #expect(record.voidedAt != nil) }
        }
    }

    /// The code as the holder receives it: read from the sealed outbox message with the master key.
    private func rightCodeFor(_ unlockID: String, _ fixture: SecurityFixture) async throws -> String? {
        let messages = try await fixture.instance.store.dueMessages(now: fixture.clock.now().adding(seconds: 60), limit: 10)
        for message in messages {
            let body = String(decoding: try fixture.masterKey.open(message.bodySealed, label: "outbox \(message.id)"), as: UTF8.self)
            if let match = body.firstMatch(of: /\b(\d{6})\b/) { return String(match.1) }
        }
        return nil
    }
}
