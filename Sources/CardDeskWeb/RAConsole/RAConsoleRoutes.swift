import CardDeskAPI
import CardDeskCore
import Foundation
import Hummingbird
import HTTPTypes
import RegistrationAuthority

/// The Registration Authority console, for RA staff signed in with their own card:
/// - `GET /ra` → sign in (not signed in), choose an RA role (the role in use is not one), or the console: search
///   people by user ID or name (`?q=`)
/// - `POST /ra/role` → work in one of your RA roles (CSRF token required)
/// - `GET /ra/people/{id}` → a person's roles, cards, certificates, contacts, what you may do for them, and history
/// A refusal is a page saying why (403), never a blank one; refusals and every record shown are audited.
struct RAConsoleRoutes {
    let pages: PageRoutes
    let console: RAConsole
    var settings: PageSettings { pages.settings }

    func register(on router: Router<WebContext>) {
        router.get("ra") { request, _ in try await home(request) }
        router.post("ra/role") { request, _ in try await chooseRole(request) }
        router.get("ra/people/:id") { request, context in try await person(request, id: context.parameters.get("id") ?? "") }
        router.post("ra/people/:id/cards/:serial/cancel") { request, context in
            try await cancel(request, id: context.parameters.get("id") ?? "", serial: context.parameters.get("serial") ?? "")
        }
        router.post("ra/people/:id/roles") { request, context in try await grant(request, id: context.parameters.get("id") ?? "") }
        router.get("ra/reports/expiry") { request, _ in try await expiry(request, csv: false) }
        router.get("ra/reports/expiry.csv") { request, _ in try await expiry(request, csv: true) }
        router.get("ra/audit") { request, _ in try await audit(request, csv: false) }
        router.get("ra/audit.csv") { request, _ in try await audit(request, csv: true) }
    }

    /// Audit search (RA Managers): by person, card, RA, event type and dates; paged; as CSV; with the chain's state.
    private func audit(_ request: Request, csv: Bool) async throws -> Response {
        try await atDesk(request, title: "Audit log", refusedAs: [.invalidInput]) { desk, visit in
            let form = AuditSearchForm(request.uri.queryParameters)
            let filter = try form.filter()
            if csv { return Self.csv(AuditCSV.text(try await console.exportAudit(desk, filter: filter)), named: "audit-\(desk.organisation).csv") }
            let page = try await console.searchAudit(desk, filter: filter, before: form.before)
            return try pages.page(AuditSearchPage(frame: visit.frame, desk: desk, form: form, page: page), "ra-audit")
        }
    }

    /// Cancelling a card permanently (a confirmed form with the reason); then the person's page again, saying so.
    private func cancel(_ request: Request, id: String, serial: String) async throws -> Response {
        try await atDesk(request, title: "Card not cancelled", refusedAs: [.unknownUser, .unknownCard, .invalidInput]) { desk, visit in
            let form = try await PageRoutes.checkedForm(RACancelForm.self, request, token: visit.token)
            guard form.confirm == "yes" else {
                throw CardDeskError(.invalidInput, "Tick the box to confirm: a cancelled card can never be used again.")
            }
            guard let reason = form.reason.flatMap(RAConsole.CancelReason.init(rawValue:)) else {
                throw CardDeskError(.invalidInput, "Choose why the card is cancelled.")
            }
            let revoked = try await console.cancelCard(desk, userID: id, cardSerial: serial, reason: reason)
            return Response(status: .seeOther, headers: [.location: "/ra/people/\(id)?cancelled=\(revoked)"])
        }
    }

    /// Granting a role (a job role, or an RA role below one's own) at the RA's organisation.
    private func grant(_ request: Request, id: String) async throws -> Response {
        try await atDesk(request, title: "Role not granted", refusedAs: [.unknownUser, .invalidInput, .userExists]) { desk, visit in
            let form = try await PageRoutes.checkedForm(RAGrantForm.self, request, token: visit.token)
            _ = try await console.grantRole(desk, userID: id, code: form.code ?? "")
            return Response(status: .seeOther, headers: [.location: "/ra/people/\(id)?granted=1"])
        }
    }

    /// The expiry report: a chart drawn here (SVG, no script), the same figures as a table, and the list as CSV.
    private func expiry(_ request: Request, csv: Bool) async throws -> Response {
        try await atDesk(request, title: "Certificates falling due") { desk, visit in
            let report = try await console.expiryReport(desk)
            guard csv else { return try pages.page(ExpiryReportPage(frame: visit.frame, desk: desk, report: report), "ra-expiry") }
            return Self.csv(ExpiryReportCSV.text(report), named: "certificates-falling-due-\(desk.organisation).csv")
        }
    }

    private func home(_ request: Request) async throws -> Response {
        guard let (token, session) = try await pages.signedIn(request) else {
            return try pages.signInPage(operation: nil, title: "Sign in to the RA console")
        }
        let frame = try await self.frame("Registration Authority console", token: token, session: session)
        let desk: RAConsole.Desk
        do {
            desk = try await console.desk(for: session)
        } catch let error as CardDeskError {
            let choices = console.raRoles(of: session).map { RARoleChoicePage.Choice(number: $0.number, name: "\($0.role) for \($0.organisation)") }
            return try pages.page(RARoleChoicePage(frame: frame, reason: error.reason, choices: choices), "ra-role", status: choices.isEmpty ? .forbidden : .ok)
        }
        let query = request.uri.queryParameters.get("q").map { String($0.prefix(64)) }
        var people: [User]?
        if let query { people = try await console.search(desk, query: query) }
        return try pages.page(RAConsolePage(frame: frame, desk: desk, query: query, people: people), "ra")
    }

    private func chooseRole(_ request: Request) async throws -> Response {
        guard let (token, session) = try await pages.signedIn(request) else { return Response(status: .seeOther, headers: [.location: "/ra"]) }
        let form = try await PageRoutes.checkedForm(RARoleForm.self, request, token: token)
        guard let number = form.number.flatMap(Int.init), console.raRoles(of: session).contains(where: { $0.number == number }) else {
            throw CardDeskError(.invalidInput, "Choose one of your RA roles.")
        }
        _ = try await pages.login.chooseRole(token: token, number: number)
        return Response(status: .seeOther, headers: [.location: "/ra"])
    }

    private func person(_ request: Request, id: String) async throws -> Response {
        try await atDesk(request, title: "No such person", refusedAs: [.unknownUser]) { desk, visit in
            let record = try await console.person(desk, id: id)
            var frame = visit.frame
            frame.title = "\(record.user.givenName) \(record.user.familyName)"
            // The outcome of an action just done (our own redirect). Only a number comes from the address: a link cannot
            // make this page show words of someone else's choosing.
            var done = request.uri.queryParameters.get("cancelled").flatMap { Int($0) }.map {
                "The card is cancelled permanently; \($0) certificate\($0 == 1 ? " was" : "s were") revoked."
            }
            for (flag, text) in Self.outcomes where request.uri.queryParameters.get(flag) == "1" { done = text }
            if request.uri.queryParameters.get("unlocked") == "1" { done = "The card is unlocked: its holder's new passcode works now." }
            return try pages.page(RAPersonPage(frame: frame, desk: desk, record: record, codes: console.codes, done: done), "ra-person")
        }
    }

    /// What the person's page says after the desk's work (`?renewed=1` …, our own redirects).
    static let outcomes: KeyValuePairs<String, String> = [
        "granted": "The role was granted.",
        "renewed": "The certificates on the card are renewed.",
        "repaired": "The card is repaired: new keys and certificates are on it.",
        "unlocked": "The card is unlocked: its holder's new passcode works now.",
        "cleared": "The card is cleared: it is blank, ready to be issued again.",
        "issued": "The new card is issued.",
    ]

    /// A signed-in RA's request (signed out: to `/ra`): `body` gets the desk and the page's frame. A refusal
    /// (`notAuthorised`, or one of `refusedAs`, titled `title`) is a page with the reason and the status of its code.
    private func atDesk(
        _ request: Request, title: String, refusedAs codes: [CardDeskError.Code] = [],
        _ body: (RAConsole.Desk, (token: String, frame: PageFrame)) async throws -> Response
    ) async throws -> Response {
        guard let (token, session) = try await pages.signedIn(request) else { return Response(status: .seeOther, headers: [.location: "/ra"]) }
        var frame = try await self.frame(title, token: token, session: session)
        do {
            return try await body(try await console.desk(for: session), (token, frame))
        } catch let error as CardDeskError where error.code == .notAuthorised || codes.contains(error.code) {
            if error.code == .notAuthorised { frame.title = "Not allowed" }
            return try pages.page(RAProblemPage(frame: frame, message: error.reason), "ra-problem", status: HTTPResponse.Status(code: error.code.httpStatus))
        }
    }

    /// A CSV download.
    private static func csv(_ text: String, named filename: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(filename)\"", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    private func frame(_ title: String, token: String, session: SessionView) async throws -> PageFrame {
        var frame = PageFrame(title: title, page: "ra", settings: settings, session: session, csrf: PageRoutes.csrf(token))
        frame.bridgeToken = try await pages.login.bridgeToken(token: token)
        return frame
    }
}

struct RAGrantForm: PostedForm {
    let csrf: String?
    let code: String?
}

struct RACancelForm: PostedForm {
    let csrf: String?
    let reason: String?
    let confirm: String?
}

struct RARoleForm: PostedForm {
    let csrf: String?
    let number: String?
}
