import CardDeskAPI
import CardDeskCore
import Foundation
import Hummingbird
import HTTPTypes
import RegistrationAuthority

/// The server-rendered pages and what they post:
/// - `GET /` → sign in (not signed in), home, or the renewal page with `?operation=selfRenewSmartcard`
/// - `POST /login/handover` → join the agent's session with a single-use code; sets the session cookie
/// - `GET /session/status` → is this page's session still open (polled every second; not activity)
/// - `POST /logout` → end the session (CSRF token required)
/// - `GET /logged-out`, `GET /help`; `GET /assets/…` (the files of `Static/`, by `FileMiddleware` in `buildRouter`)
///
/// The session cookie is HttpOnly and SameSite=Strict (Secure under TLS). Every state-changing request carries a CSRF
/// token: before sign-in, the one in the page matching an HttpOnly cookie; after, one derived from the session token.
struct PageRoutes {
    let login: LoginService
    let unlock: UnlockService
    let settings: PageSettings
    let limiter: RateLimiter

    /// Under https the names carry the `__Host-` prefix: the browser then takes them only when Secure, with Path=/
    /// and no Domain, so no other host (a sibling subdomain, a plain-http page) can plant or overwrite them.
    var sessionCookie: String { settings.secureCookies ? "__Host-carddesk_session" : "carddesk_session" }
    var loginCookie: String { settings.secureCookies ? "__Host-carddesk_login" : "carddesk_login" }

    func register(on router: Router<WebContext>) {
        router.get("/") { request, _ in try await root(request) }
        router.get("logged-out") { request, _ in
            let reason = request.uri.queryParameters.get("reason").map { String($0.prefix(64)) }
            var response = try page(LoggedOutPage(frame: PageFrame(title: "You have been logged out", page: "logged-out", settings: settings), reason: reason), "logged-out")
            response.setCookie(cookie(sessionCookie, value: "", maxAge: 0))
            return response
        }
        router.get("help") { _, _ in try page(PlainPage(frame: PageFrame(title: "Help", page: "help", settings: settings)), "help") }
        router.get("favicon.ico") { _, _ in HTTPResponse.Status.noContent }
        router.get("session/status") { request, _ in
            guard let token = request.cookies[sessionCookie]?.value else { return LoginAPI.SessionStatus(active: false, reason: "not signed in") }
            return try await login.status(token: token)
        }
        router.post("login/handover") { request, context in try await handover(request, context: context) }
        router.get("unlock") { _, _ in try page(PlainPage(frame: PageFrame(title: "Unlock your smartcard", page: "unlock", settings: settings)), "unlock") }
        router.get("passcode") { request, _ in
            guard let (token, session) = try await signedIn(request) else { return Response(status: .seeOther, headers: [.location: "/"]) }
            var frame = PageFrame(title: "Change your passcode", page: "passcode", settings: settings, session: session, csrf: Self.csrf(token))
            frame.bridgeToken = try await login.bridgeToken(token: token)
            return try page(PlainPage(frame: frame), "passcode")
        }
        router.post("contacts") { request, _ in try await contacts(request, confirm: false) }
        router.post("contacts/confirm") { request, _ in try await contacts(request, confirm: true) }
        router.post("logout") { request, context in try await logout(request, context: context) }
    }

    private func root(_ request: Request) async throws -> Response {
        let operation = request.uri.queryParameters.get("operation").map { String($0) }
        guard let token = request.cookies[sessionCookie]?.value else { return try signInPage(operation: operation) }
        let status = try await login.status(token: token)
        guard status.active else {
            // A session that ended while the page was closed: say so, once (that page clears the cookie).
            let reason = (status.reason ?? "").addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            return Response(status: .seeOther, headers: [.location: "/logged-out?reason=\(reason)"])
        }
        let session = try await login.current(token: token)
        var frame = PageFrame(title: "Your smartcard", page: "home", settings: settings, session: session, csrf: Self.csrf(token))
        frame.bridgeToken = try await login.bridgeToken(token: token)
        if operation == "selfRenewSmartcard" {
            frame.title = "Renew your smartcard certificates"
            frame.page = "renew"
            return try page(RenewalPage(frame: frame, session: session), "renewal")
        }
        return try await home(frame, session: session, pending: nil, message: nil, error: nil)
    }

    private func home(_ frame: PageFrame, session: SessionView, pending: UnlockAPI.CodeSent?, message: String?, error: String?) async throws -> Response {
        let contacts = try await unlock.contacts(userID: try UserID(session.userID))
        // A change of address needs the card's consent over a fresh challenge (the page asks the agent for it).
        let challenge = pending == nil ? try await unlock.contactChallenge() : ""
        let part = ContactsPart(contacts, csrf: frame.csrf ?? "", challenge: challenge, pending: pending, message: message, error: error)
        return try page(HomePage(frame: frame, session: session, contacts: part), "home")
    }

    /// The signed-in session of this request, if it is open.
    func signedIn(_ request: Request) async throws -> (String, SessionView)? {
        guard let token = request.cookies[sessionCookie]?.value, try await login.status(token: token).active else { return nil }
        return (token, try await login.current(token: token))
    }

    /// Adding (or changing) a contact address, then confirming it with the code sent to it. Plain forms.
    private func contacts(_ request: Request, confirm: Bool) async throws -> Response {
        guard let (token, session) = try await signedIn(request) else { return Response(status: .seeOther, headers: [.location: "/"]) }
        let form = try await Self.checkedForm(ContactForm.self, request, token: token)
        var frame = PageFrame(title: "Your smartcard", page: "home", settings: settings, session: session, csrf: Self.csrf(token))
        frame.bridgeToken = try await login.bridgeToken(token: token)
        let userID = try UserID(session.userID)
        do {
            if confirm {
                _ = try await unlock.confirmContact(userID: userID, confirmationID: form.id ?? "", code: form.code ?? "")
                return try await home(frame, session: session, pending: nil, message: "Confirmed: unlock codes can now be sent there.", error: nil)
            }
            let channel = ContactChannel(rawValue: form.channel ?? "") ?? .email
            let pending = try await unlock.registerContact(
                userID: userID, cardSerial: session.renewal.cardSerial, channel: channel, address: form.address ?? "",
                challenge: form.challenge ?? "", signature: Array(Data(base64Encoded: form.signature ?? "") ?? Data())
            )
            return try await home(frame, session: session, pending: pending, message: nil, error: nil)
        } catch let error as CardDeskError {
            return try await home(frame, session: session, pending: nil, message: nil, error: error.reason)
        }
    }

    /// An `application/x-www-form-urlencoded` body read with Hummingbird's decoder; nil for another content type.
    static func form<Form: Decodable>(_ type: Form.Type, _ request: Request) async throws -> Form? {
        guard request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true else { return nil }
        let text = String(buffer: try await request.body.collect(upTo: 16 * 1024))
        do {
            return try PageForms.decode(type, from: text)
        } catch {
            throw CardDeskError(.invalidInput, "The form could not be read. Reload the page and try again.")
        }
    }

    /// A posted form that carries the session's CSRF token; refused (403) without it.
    static func checkedForm<Form: PostedForm>(_ type: Form.Type, _ request: Request, token: String) async throws -> Form {
        guard let form = try await form(type, request), let given = form.csrf, ConstantTime.equal(given, csrf(token)) else { throw csrfRefusal }
        return form
    }

    func signInPage(operation: String?, title: String = "Sign in") throws -> Response {
        // A fresh login CSRF token: in the page for the script, and in an HttpOnly cookie to compare with.
        let token = CardChallenges.randomToken()
        let frame = PageFrame(title: title, page: "signin", settings: settings, csrf: token)
        var response = try page(SignInPage(frame: frame, forRenewal: operation == "selfRenewSmartcard"), "sign-in")
        response.setCookie(cookie(loginCookie, value: token, maxAge: 3600))
        return response
    }

    private func handover(_ request: Request, context: WebContext) async throws -> Response {
        struct Body: Decodable { let code: String }
        guard let expected = request.cookies[loginCookie]?.value, let given = request.headers[Self.csrfHeader],
              ConstantTime.equal(expected, given)
        else { throw Self.csrfRefusal }
        try await limiter.check(.handovers, "addr:\(context.peerAddress)")
        let body = try await request.decode(as: Body.self, context: context)
        let session = try await login.redeemHandover(code: body.code)
        guard let token = session.token else { throw CardDeskError(.internalFailure, "No session was opened.") }
        var response = Response(status: .noContent)
        response.setCookie(cookie(sessionCookie, value: token, maxAge: nil))
        response.setCookie(cookie(loginCookie, value: "", maxAge: 0))
        return response
    }

    private func logout(_ request: Request, context: WebContext) async throws -> Response {
        guard let token = request.cookies[sessionCookie]?.value else {
            return Response(status: .seeOther, headers: [.location: "/logged-out?reason=logged%20out"])
        }
        var given = request.headers[Self.csrfHeader]
        if given == nil { given = try await Self.form(LogoutForm.self, request)?.csrf }
        guard let given, ConstantTime.equal(given, Self.csrf(token)) else { throw Self.csrfRefusal }
        try await login.logout(token: token, reason: "logged out")
        var response = Response(status: .seeOther, headers: [.location: "/logged-out?reason=logged%20out"])
        response.setCookie(cookie(sessionCookie, value: "", maxAge: 0))
        return response
    }

    // MARK: helpers

    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    static let csrfRefusal = CardDeskError(
        .notAuthorised, "This request was refused because it did not carry the page's security token (CSRF). Reload the page and try again."
    )

    /// The CSRF token of a session: derived from its (HttpOnly) cookie token, so nothing extra is stored.
    static func csrf(_ sessionToken: String) -> String {
        CardChallenges.hash("carddesk-csrf:\(sessionToken)")
    }

    private func cookie(_ name: String, value: String, maxAge: Int?) -> Cookie {
        // Names and values are ours (hex or base64url): always valid.
        (try? Cookie.validated(name: name, value: value, maxAge: maxAge, path: "/", secure: settings.secureCookies, httpOnly: true, sameSite: .strict))
            ?? Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: settings.secureCookies, httpOnly: true)
    }

    func page(_ model: Any, _ template: String, status: HTTPResponse.Status = .ok) throws -> Response {
        let text = try PageViews.render(model, template)
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
