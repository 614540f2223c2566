import CardDeskCore
import Foundation
import Testing

/// Item 4: a request that read a session before logout can never write it back open.
@Suite("Security: ended sessions stay ended")
struct SessionResurrectionTests {
    @Test("Logout while 12 requests use the session, 15 rounds: the session is ended every time", arguments: Backend.available)
    func logoutRacesReads(_ backend: Backend) async throws {
        try await SecurityFixture.with(backend) { fixture in
            let login = fixture.instance.login
            let card = try await fixture.issueCard("racing")
            var resurrected = 0
            for _ in 0..<15 {
                let token = try #require(try await fixture.signIn(card).token)
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<12 { group.addTask { _ = try? await login.current(token: token) } }
                    group.addTask { try? await login.logout(token: token, reason: "card removed") }
                    for _ in 0..<12 { group.addTask { _ = try? await login.current(token: token) } }
                }
                // The check-in that follows must not see it open either.
                if try await login.status(token: token).active { resurrected += 1 }
                if try await login.keepAlive(token: token).active { resurrected += 1 }
            }
            #expect(resurrected == 0)
        }
    }
}
