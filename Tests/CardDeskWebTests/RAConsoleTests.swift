import CardDeskAPI
import CardDeskCore
import CardDeskServerKit
import CardDeskTestSupport
import CardDeskWeb
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RegistrationAuthority
import Smartcard
import Testing
import VirtualSmartcard

/// The RA console over HTTP: RA staff signed in with their own card (through the real sign-in and hand-over), working
/// in an RA role; search; a person's record; refusals as pages with a reason, audited.
@Suite("RA console")
struct RAConsoleTests {
    /// Adds a user, issues them a virtual card, signs the card in (choosing `role`, 1-based, when several), and hands
    /// the session over to a browser: the browser's session token.
    static func browserSession(_ fixture: RenewalFixture, id: String, given: String, organisation: String, roles: [String], choose role: Int?) async throws -> String {
        let userID = try UserID(id)
        try await fixture.instance.store.addUser(
            try User(id: userID, givenName: given, familyName: "Staff", organisation: organisation, roles: roles.map { try Role(parsing: $0) }),
            audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:\(id)", time: fixture.clock.now())
        )
        let file = fixture.folder.appendingPathComponent("\(id).json")
        _ = try await fixture.instance.cardIssuer.issueVirtualCard(userID: userID, file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: 30, actor: "test")
        let card = PIVCardSession(transport: VirtualPIVCard(file: file))
        try await card.verifyPIN("123456")
        let login = fixture.instance.login
        let challenge = try await login.challenge()
        let serial = try await card.serial()
        let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
        let agent = try await login.login(cardSerial: serial, challenge: challenge, signature: signature.rawRepresentation)
        let agentToken = try #require(agent.token)
        if let role { _ = try await login.chooseRole(token: agentToken, number: role) }
        let browser = try await login.redeemHandover(code: try await login.handover(token: agentToken).code)
        return try #require(browser.token)
    }

    static func withConsole(_ body: @escaping @Sendable (RenewalFixture, any TestClientProtocol) async throws -> Void) async throws {
        try await RenewalFixture.with { fixture in
            // Jane Doe (555254600106, RBQ) is the fixture's card holder, with a card.
            _ = try await fixture.issueCard("jane")
            try await fixture.instance.store.addUser(
                try User(id: try UserID("555254600300"), givenName: "Omar", familyName: "Elsewhere", organisation: "RXH", roles: [try Role(parsing: "R8000@RXH")]),
                audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:555254600300", time: fixture.clock.now())
            )
            let app = buildApplication(services: fixture.instance.webServices, configuration: .init(), logger: Logger(label: "test"))
            try await app.test(.router) { client in try await body(fixture, client) }
        }
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, token: String?) async throws -> (HTTPResponse.Status, String) {
        var headers: HTTPFields = [:]
        if let token { headers[.cookie] = "carddesk_session=\(token)" }
        return try await client.execute(uri: uri, method: .get, headers: headers) { ($0.status, String(buffer: $0.body)) }
    }

    @Test("An RA Agent finds people of their organisation and sees a record: roles, card, certificates, every action allowed; the view is audited")
    func agentSearchesAndViews() async throws {
        try await Self.withConsole { fixture, client in
            let token = try await Self.browserSession(fixture, id: "555254600900", given: "Rae", organisation: "RBQ", roles: ["R8000@RBQ", "RAAGENT@RBQ"], choose: 2)
            let (status, home) = try await Self.get(client, "/ra", token: token)
            #expect(status == .ok)
            #expect(home.contains("Working as <strong>RA Agent for RBQ</strong>"))
            #expect(home.contains(#"data-page="ra""#))

            let (_, found) = try await Self.get(client, "/ra?q=do", token: token)
            #expect(found.contains(#"<a href="/ra/people/555254600106">Doe, Jane</a>"#))
            let (_, byID) = try await Self.get(client, "/ra?q=555254600106", token: token)
            #expect(byID.contains("/ra/people/555254600106"))
            // Someone of another organisation is not found, by name or ID.
            let (_, other) = try await Self.get(client, "/ra?q=Elsewhere", token: token)
            #expect(other.contains("Nobody in your organisation matches"))
            let (_, otherID) = try await Self.get(client, "/ra?q=555254600300", token: token)
            #expect(!otherID.contains("/ra/people/555254600300"))
            // A query with markup, and LIKE's wildcards, stand for themselves.
            let (_, hostile) = try await Self.get(client, "/ra?q=%3Cb%3E%25", token: token)
            #expect(hostile.contains("&lt;b&gt;%") && !hostile.contains("<b>%"))
            #expect(hostile.contains("Nobody in your organisation matches"))

            let (personStatus, person) = try await Self.get(client, "/ra/people/555254600106", token: token)
            #expect(personStatus == .ok)
            #expect(person.contains("<h1>Jane Doe</h1>"))
            #expect(person.contains(#"id="ra-person-cards""#) && person.contains(#"<td class="status">active</td>"#))
            #expect(person.contains(#"<tr data-profile="authentication">"#) && person.contains(#"<td class="status">valid</td>"#))
            #expect(!person.contains("No: "), "an RA Agent may do everything for someone of their organisation")
            #expect(person.contains("card.enrol") || person.contains("certificate.issue"), "the history shows the card's issue")
            let views = try await fixture.audit(.raView)
            #expect(views == ["success RA Agent for RBQ"])

            // A month on (the server's clock, not the machine's), Jane's 30-day certificates show as expired.
            fixture.clock.advance(seconds: 31 * 86_400)
            let later = try await Self.browserSession(fixture, id: "555254600908", given: "Ray", organisation: "RBQ", roles: ["RAAGENT@RBQ"], choose: nil)
            let (_, expired) = try await Self.get(client, "/ra/people/555254600106", token: later)
            #expect(expired.components(separatedBy: #"<td class="status">expired</td>"#).count - 1 == 2)
        }
    }

    @Test("Refusals are pages with the reason, audited: another organisation's person, a Sponsor's limits, one's own record, no RA role")
    func refusals() async throws {
        try await Self.withConsole { fixture, client in
            let sponsor = try await Self.browserSession(fixture, id: "555254600901", given: "Sam", organisation: "RBQ", roles: ["RASPONSOR@RBQ"], choose: nil)
            let (status, page) = try await Self.get(client, "/ra/people/555254600300", token: sponsor)
            #expect(status == .forbidden)
            #expect(page.contains("Your Sponsor role covers RBQ; Omar Elsewhere works for RXH. Ask their own Registration Authority."))
            #expect(try await fixture.audit(.raAction).contains { $0.hasPrefix("failure view refused: Sponsor for RBQ") })

            let (_, limited) = try await Self.get(client, "/ra/people/555254600106", token: sponsor)
            #expect(limited.contains("<th scope=\"row\">issue a card</th><td>No: A Sponsor may not issue a card: ask an RA Agent or your RA Manager.</td>"))
            #expect(limited.contains("<th scope=\"row\">unlock a card</th><td>Yes</td>"))

            let (_, own) = try await Self.get(client, "/ra/people/555254600901", token: sponsor)
            #expect(own.contains("<th scope=\"row\">unlock a card</th><td>No: Nobody performs an RA action on their own card"))

            let (_, unknown) = try await Self.get(client, "/ra/people/999999999999", token: sponsor)
            #expect(unknown.contains("No person with user ID 999999999999 is registered."))

            let clinician = try await Self.browserSession(fixture, id: "555254600902", given: "Cal", organisation: "RBQ", roles: ["R8000@RBQ"], choose: nil)
            let (refusedStatus, refused) = try await Self.get(client, "/ra", token: clinician)
            #expect(refusedStatus == .forbidden)
            #expect(refused.contains("none of your roles is an RA role"))
            let (personRefused, _) = try await Self.get(client, "/ra/people/555254600106", token: clinician)
            #expect(personRefused == .forbidden)

            let (signInStatus, signIn) = try await Self.get(client, "/ra", token: nil)
            #expect(signInStatus == .ok && signIn.contains(#"data-page="signin""#) && signIn.contains("Sign in to the RA console"))
        }
    }

    @Test("Working in a job role, the console offers the user's RA roles; choosing one (with the page's CSRF token) opens it")
    func choosingAnRARole() async throws {
        try await Self.withConsole { fixture, client in
            let token = try await Self.browserSession(fixture, id: "555254600903", given: "Ida", organisation: "RBQ", roles: ["R8000@RBQ", "RAMANAGER@RBQ"], choose: 1)
            let (status, page) = try await Self.get(client, "/ra", token: token)
            #expect(status == .ok)
            #expect(page.contains("Choose one of your RA roles"))
            #expect(page.contains(#"<label for="ra-role-2">RA Manager for RBQ</label>"#))
            #expect(!page.contains("ra-role-1"), "the job role is not offered")
            let csrf = CardChallenges.hash("carddesk-csrf:\(token)")
            let form: HTTPFields = [.cookie: "carddesk_session=\(token)", .contentType: "application/x-www-form-urlencoded"]
            try await client.execute(uri: "/ra/role", method: .post, headers: form, body: ByteBuffer(string: "number=2")) { response in
                #expect(response.status == .forbidden, "no CSRF token")
            }
            try await client.execute(uri: "/ra/role", method: .post, headers: form, body: ByteBuffer(string: "csrf=\(csrf)&number=1")) { response in
                #expect(response.status == .badRequest, "a job role is not an RA role")
            }
            try await client.execute(uri: "/ra/role", method: .post, headers: form, body: ByteBuffer(string: "csrf=\(csrf)&number=2")) { response in
                #expect(response.status == .seeOther)
            }
            let (_, console) = try await Self.get(client, "/ra", token: token)
            #expect(console.contains("Working as <strong>RA Manager for RBQ</strong>"))
        }
    }

    @Test("The expiry report: the organisation's good certificates per week for 26 weeks, as an SVG chart and a table; the list as CSV")
    func expiryReport() async throws {
        try await Self.withConsole { fixture, client in
            // Jane Doe's card (30 days) is there already; three more people of RBQ and one of RXH.
            let issuer = fixture.instance.cardIssuer
            for (id, given, organisation, days) in [
                ("555254600911", "-Dash", "RBQ", 3), ("555254600912", "Hundred", "RBQ", 100), ("555254600913", "Later", "RBQ", 200),
                ("555254600914", "Away", "RXH", 10),
            ] {
                try await fixture.instance.store.addUser(
                    try User(id: try UserID(id), givenName: given, familyName: "Due", organisation: organisation, roles: [try Role(parsing: "R8000@\(organisation)")]),
                    audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:\(id)", time: fixture.clock.now())
                )
                _ = try await issuer.issueVirtualCard(
                    userID: try UserID(id), file: fixture.folder.appendingPathComponent("\(id).json"), passcode: "123456", keyAlgorithm: .p256, validityDays: days, actor: "test"
                )
            }
            let token = try await Self.browserSession(fixture, id: "555254600915", given: "Lee", organisation: "RBQ", roles: ["RALSA@RBQ"], choose: nil)
            let (status, page) = try await Self.get(client, "/ra/reports/expiry", token: token)
            #expect(status == .ok)
            // Week 0: -Dash (3 days), week 4: Jane Doe (30 days), week 14: Hundred (100 days); 2 certificates each.
            // Later (200 days) is past 26 weeks, and Away works elsewhere; Lee's own card (30 days) counts too.
            let counts = page.components(separatedBy: "<tbody>")[1].components(separatedBy: "</td></tr>").dropLast().map { Int($0.split(separator: ">").last ?? "") ?? -1 }
            #expect(counts.count == 26)
            var expected = [Int](repeating: 0, count: 26)
            expected[0] = 2
            expected[4] = 4
            expected[14] = 2
            #expect(counts == expected)
            #expect(page.contains("8 certificates of RBQ fall due in the next 26 weeks; the most, 4, in the week of"))
            #expect(page.contains(#"<svg id="expiry-chart" role="img""#))
            #expect(page.components(separatedBy: #"<rect class="bar""#).count - 1 == 26)
            #expect(page.contains(#"<rect class="bar" x="120" y="20" width="24" height="180""#), "the busiest week's bar is full height")

            let csv = try await client.execute(uri: "/ra/reports/expiry.csv", method: .get, headers: [.cookie: "carddesk_session=\(token)"]) { response in
                #expect(response.headers[.contentType] == "text/csv; charset=utf-8")
                #expect(response.headers[.contentDisposition] == #"attachment; filename="certificates-falling-due-RBQ.csv""#)
                return String(buffer: response.body)
            }
            let lines = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            #expect(lines.first == "user_id,given_name,family_name,certificate,serial,card,expires")
            #expect(lines.count == 9)
            #expect(lines[1].hasPrefix("555254600911,'-Dash,Due,"), "a cell a spreadsheet would run as a formula is quoted with an apostrophe")
            #expect(!csv.contains("555254600913") && !csv.contains("555254600914"))

            let (refused, _) = try await Self.get(client, "/ra/reports/expiry.csv", token: try await Self.browserSession(
                fixture, id: "555254600916", given: "Cal", organisation: "RBQ", roles: ["R8000@RBQ"], choose: nil
            ))
            #expect(refused == .forbidden)
        }
    }

    @Test("Audit search (RA Managers): by person, event and dates, paged, as CSV, only the organisation's entries, with the chain's state")
    func auditSearch() async throws {
        try await Self.withConsole { fixture, client in
            let store = fixture.instance.store
            for index in 0..<60 {
                _ = try await store.appendAudit(AuditEvent(action: .login, actor: "user:555254600106", subject: "user:555254600106", details: "sign-in \(index)", time: fixture.clock.now()))
            }
            let manager = try await Self.browserSession(fixture, id: "555254600920", given: "Mo", organisation: "RBQ", roles: ["RAMANAGER@RBQ"], choose: nil)
            let (status, page) = try await Self.get(client, "/ra/audit?person=555254600106&action=login", token: manager)
            #expect(status == .ok)
            #expect(page.contains("The audit chain verifies: all "))
            #expect(page.components(separatedBy: "<td>login</td>").count - 1 == 50, "a page of 50")
            #expect(page.contains("<td>sign-in 59</td>") && !page.contains("<td>sign-in 9</td>"), "newest first")
            let older = try #require(page.components(separatedBy: #"<a href=""#).first { $0.contains(#"id="audit-older""#) }?.components(separatedBy: "\"").first)
            let (_, second) = try await Self.get(client, older.replacingOccurrences(of: "&amp;", with: "&"), token: manager)
            #expect(second.contains("<td>sign-in 9</td>") && second.contains("<td>sign-in 0</td>") && !second.contains("<td>sign-in 10</td>"))
            #expect(!second.contains(#"id="audit-older""#), "the last page")

            // The person's card's entries too; another organisation's person's never.
            let card = try #require(try await store.cards(userID: try UserID("555254600106")).first?.serial)
            _ = try await store.appendAudit(AuditEvent(action: .unlock, actor: "card:\(card)", subject: "card:\(card)", details: "unlocked", time: fixture.clock.now()))
            let (_, cardEntries) = try await Self.get(client, "/ra/audit?person=555254600106&action=card.unlock", token: manager)
            #expect(cardEntries.contains("<td>card:\(card)</td>") && cardEntries.contains("<td>unlocked</td>"))
            let (_, byCard) = try await Self.get(client, "/ra/audit?card=\(card)", token: manager)
            #expect(byCard.contains("<td>unlocked</td>") && !byCard.contains("<td>login</td>"))
            let (_, issued) = try await Self.get(client, "/ra/audit?person=555254600106&action=ra.action", token: manager)
            #expect(issued.contains("card issue \(card)"))
            let (_, elsewhere) = try await Self.get(client, "/ra/audit?person=555254600300", token: manager)
            #expect(elsewhere.contains("No audit entry matches."))
            // Dates: nothing before today, everything up to today (the "to" day is included).
            let today = fixture.clock.now().dateDescription
            let (_, none) = try await Self.get(client, "/ra/audit?to=2020-01-01", token: manager)
            #expect(none.contains("No audit entry matches."))
            let (_, todays) = try await Self.get(client, "/ra/audit?from=\(today)&to=\(today)&action=login", token: manager)
            #expect(todays.contains("<td>sign-in 59</td>"))
            let (badStatus, bad) = try await Self.get(client, "/ra/audit?from=30/11/2026", token: manager)
            #expect(badStatus == .badRequest && bad.contains("The from date must be written YYYY-MM-DD"))

            let csv = try await client.execute(uri: "/ra/audit.csv?person=555254600106&action=login", method: .get, headers: [.cookie: "carddesk_session=\(manager)"]) {
                String(buffer: $0.body)
            }
            let lines = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            #expect(lines.first == "sequence,time,action,actor,subject,outcome,details")
            #expect(lines.count == 61, "every matching entry, not a page")

            let agent = try await Self.browserSession(fixture, id: "555254600921", given: "Al", organisation: "RBQ", roles: ["RAAGENT@RBQ"], choose: nil)
            let (refused, refusal) = try await Self.get(client, "/ra/audit", token: agent)
            #expect(refused == .forbidden && refusal.contains("Searching the audit log is for RA Managers."))
            let (refusedCSV, _) = try await Self.get(client, "/ra/audit.csv", token: agent)
            #expect(refusedCSV == .forbidden)
            #expect(try await fixture.audit(.raAction).contains { $0.hasPrefix("failure audit search refused: RA Agent for RBQ") })
        }
    }

    static func post(_ client: any TestClientProtocol, _ uri: String, token: String, body: String) async throws -> (HTTPResponse.Status, String, String?) {
        let headers: HTTPFields = [.cookie: "carddesk_session=\(token)", .contentType: "application/x-www-form-urlencoded"]
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) {
            ($0.status, String(buffer: $0.body), $0.headers[.location])
        }
    }

    @Test("Cancelling a card over HTTP, role by role (the table's cancel column), own card and another organisation's refused; a cancelled card signs in nowhere and its certificates are revoked")
    func cancelCard() async throws {
        try await Self.withConsole { fixture, client in
            let store = fixture.instance.store
            let jane = try UserID("555254600106")
            var staff: [RARole: String] = [:]
            for (index, role) in RARole.allCases.enumerated() {
                let id = "55525460093\(index)"
                staff[role] = try await Self.browserSession(
                    fixture, id: id, given: "Staff", organisation: "RBQ", roles: ["\(RARoleCodes.defaults.code(for: role))@RBQ"], choose: nil
                )
            }
            for role in RARole.allCases {
                let token = try #require(staff[role])
                let card = try await fixture.issueCard("cancel-\(role.rawValue)")
                let serial = try await card.serial()
                let csrf = CardChallenges.hash("carddesk-csrf:\(token)")
                let uri = "/ra/people/555254600106/cards/\(serial)/cancel"
                let (status, page, location) = try await Self.post(client, uri, token: token, body: "csrf=\(csrf)&reason=lostOrStolen&confirm=yes")
                let stored = try #require(try await store.card(serial: serial))
                if NationalRATable.allows(role, .cancelCard) {
                    #expect(status == .seeOther, "\(role)")
                    #expect(location == "/ra/people/555254600106?cancelled=2", "\(role)")
                    #expect(stored.status == .cancelled, "\(role)")
                    let certificates = try await store.certificates(userID: jane).filter { $0.cardSerial == serial }
                    #expect(certificates.count == 2 && certificates.allSatisfy { $0.status == .revoked && $0.revocationReason == .keyCompromise }, "\(role)")
                    for certificate in certificates {
                        #expect(try await store.presignedAnswer(serial: certificate.serial)?.status == .revoked, "\(role): OCSP says revoked")
                    }
                    // The card signs in nowhere.
                    try await card.verifyPIN("123456")
                    let challenge = try await fixture.instance.login.challenge()
                    let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
                    let refused = await #expect(throws: CardDeskError.self) {
                        try await fixture.instance.login.login(cardSerial: serial, challenge: challenge, signature: signature.rawRepresentation)
                    }
                    #expect(refused?.reason.contains("has been cancelled") == true, "\(role)")
                    let (_, shown) = try await Self.get(client, location ?? "", token: token)
                    #expect(shown.contains("The card is cancelled permanently; 2 certificates were revoked."), "\(role)")
                    #expect(!shown.contains("id=\"cancel-\(serial)\""), "\(role): no cancel form for a cancelled card")
                } else {
                    #expect(status == .forbidden, "\(role)")
                    #expect(page.contains("\(role.withArticle) may not cancel a card permanently"), "\(role)")
                    #expect(stored.status == .active, "\(role)")
                    #expect(try await store.certificates(userID: jane).filter { $0.cardSerial == serial }.allSatisfy { $0.status == .good })
                }
            }
            #expect(try await fixture.audit(.raAction).filter { $0.hasPrefix("failure cancel refused") }.count == 2)

            // Without the confirmation, or the token: nothing happens.
            let manager = try #require(staff[.manager])
            let csrf = CardChallenges.hash("carddesk-csrf:\(manager)")
            let card = try await fixture.issueCard("cancel-unconfirmed")
            let serial = try await card.serial()
            let (unconfirmed, message, _) = try await Self.post(client, "/ra/people/555254600106/cards/\(serial)/cancel", token: manager, body: "csrf=\(csrf)&reason=damaged")
            #expect(unconfirmed == .badRequest && message.contains("Tick the box to confirm"))
            let (noToken, _, _) = try await Self.post(client, "/ra/people/555254600106/cards/\(serial)/cancel", token: manager, body: "reason=damaged&confirm=yes")
            #expect(noToken == .forbidden)
            #expect(try await store.card(serial: serial)?.status == .active)
            // Another person's card under this person's address: refused.
            let (mismatch, wrongCard, _) = try await Self.post(client, "/ra/people/555254600300/cards/\(serial)/cancel", token: manager, body: "csrf=\(csrf)&reason=damaged&confirm=yes")
            #expect(mismatch == .forbidden, "Omar is not in RBQ")
            #expect(wrongCard.contains("works for RXH"))
            // Their own card: refused.
            let own = try #require(try await store.cards(userID: try UserID("555254600930")).first?.serial)
            let (ownStatus, ownPage, _) = try await Self.post(client, "/ra/people/555254600930/cards/\(own)/cancel", token: manager, body: "csrf=\(csrf)&reason=damaged&confirm=yes")
            #expect(ownStatus == .forbidden && ownPage.contains("own card"))
        }
    }

    @Test("Granting roles: job roles by RA Agents and above, RA roles only below one's own, at one's organisation, never to oneself")
    func grantingRoles() async throws {
        try await Self.withConsole { fixture, client in
            let agent = try await Self.browserSession(fixture, id: "555254600940", given: "Al", organisation: "RBQ", roles: ["RAAGENT@RBQ"], choose: nil)
            let sponsor = try await Self.browserSession(fixture, id: "555254600941", given: "Sam", organisation: "RBQ", roles: ["RASPONSOR@RBQ"], choose: nil)
            let manager = try await Self.browserSession(fixture, id: "555254600942", given: "Mo", organisation: "RBQ", roles: ["RAMANAGER@RBQ"], choose: nil)
            func grant(_ token: String, _ id: String, _ code: String) async throws -> (HTTPResponse.Status, String) {
                let csrf = CardChallenges.hash("carddesk-csrf:\(token)")
                let (status, page, _) = try await Self.post(client, "/ra/people/\(id)/roles", token: token, body: "csrf=\(csrf)&code=\(code)")
                return (status, page)
            }
            let (_, page) = try await Self.get(client, "/ra/people/555254600106", token: agent)
            #expect(page.contains(#"id="ra-grant""#) && page.contains("RASPONSOR (Sponsor), RALSA (Local Smartcard Administrator)"))
            #expect(try await grant(agent, "555254600106", "R8001").0 == .seeOther)
            #expect(try await grant(agent, "555254600106", "RASPONSOR").0 == .seeOther)
            let (equal, equalPage) = try await grant(agent, "555254600106", "RAAGENT")
            #expect(equal == .forbidden && equalPage.contains("An RA Agent may grant only RA roles below their own; RA Agent is not."))
            let (again, againPage) = try await grant(agent, "555254600106", "R8001")
            #expect(again == .conflict && againPage.contains("hold the role R8001@RBQ already"))
            #expect(try await grant(sponsor, "555254600106", "R8001").0 == .forbidden)
            #expect(try await grant(agent, "555254600940", "R8001").0 == .forbidden, "not to oneself")
            #expect(try await grant(agent, "555254600300", "R8001").0 == .forbidden, "another organisation's person")
            #expect(try await grant(manager, "555254600106", "RAAGENTADV").0 == .seeOther)
            let (badCode, badPage) = try await grant(manager, "555254600106", "not%20a%20code")
            #expect(badCode == .badRequest && badPage.contains("is not a role code"))
            let jane = try #require(try await fixture.instance.store.user(id: try UserID("555254600106")))
            #expect(jane.roles.map(\.description) == ["R8000@RBQ", "R8001@RBQ", "RASPONSOR@RBQ", "RAAGENTADV@RBQ"])
            let (_, shown) = try await Self.get(client, "/ra/people/555254600106?granted=1", token: manager)
            #expect(shown.contains("The role was granted.") && shown.contains("<li>RAAGENTADV@RBQ (RA Agent (Advanced))</li>"))
            let (_, sponsorView) = try await Self.get(client, "/ra/people/555254600106", token: sponsor)
            #expect(!sponsorView.contains(#"id="ra-grant""#), "no form for a role that may not grant")
            #expect(try await fixture.audit(.raAction).filter { $0.hasPrefix("success role granted") }.count == 3)
        }
    }

    @Test("Every cell of the national table as the person's page states it over HTTP, for each RA role; own record and another organisation refused")
    func everyCellOnThePersonPage() async throws {
        try await Self.withConsole { fixture, client in
            for (index, role) in RARole.allCases.enumerated() {
                let token = try await Self.browserSession(
                    fixture, id: "55525460096\(index)", given: "Staff", organisation: "RBQ", roles: ["\(RARoleCodes.defaults.code(for: role))@RBQ"], choose: nil
                )
                let (status, page) = try await Self.get(client, "/ra/people/555254600106", token: token)
                #expect(status == .ok, "\(role)")
                for action in RAAction.allCases {
                    let cell = NationalRATable.allows(role, action)
                        ? "<th scope=\"row\">\(action)</th><td>Yes</td>"
                        : "<th scope=\"row\">\(action)</th><td>No: \(role.withArticle) may not \(action): ask an RA Agent or your RA Manager.</td>"
                    #expect(page.contains(cell), "\(role), \(action)")
                }
                let (_, own) = try await Self.get(client, "/ra/people/55525460096\(index)", token: token)
                #expect(own.components(separatedBy: "No: Nobody performs an RA action on their own card").count - 1 == RAAction.allCases.count, "\(role)")
                let (elsewhere, _) = try await Self.get(client, "/ra/people/555254600300", token: token)
                #expect(elsewhere == .forbidden, "\(role)")
            }
        }
    }
}
