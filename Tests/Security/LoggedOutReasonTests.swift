import Foundation
import Testing

/// Item 8: the logged-out page shows only the reasons CardDesk gives, never text from the link.
@Suite("Security: the logged-out page")
struct LoggedOutReasonTests {
    @Test("A made-up reason in the link is not shown; a known one is")
    func onlyKnownReasons() async throws {
        try await SecurityFixture.with { fixture in
            try await HTTPServer.with(fixture.instance) { base in
                let forged = try await HTTPServer.send(base, "/logged-out?reason=Call%20IT%20on%200900%20123456", method: "GET")
                #expect(forged.status == 200)
                #expect(!forged.body.contains("0900"))
                #expect(forged.body.contains("Your session has ended."))
                let known = try await HTTPServer.send(base, "/logged-out?reason=card%20removed", method: "GET")
                #expect(known.body.contains("Your smartcard was removed from the reader."))
            }
        }
    }
}
