import CardDeskAPI
import CardDeskCore
import Foundation
import HTTPTypes
public import Hummingbird
public import Logging

/// The localhost bridge the web page talks to (the modern replacement for the old Java applet).
///
/// - Listens on 127.0.0.1 only.
/// - Answers only requests whose `Host` is `127.0.0.1:PORT` or `localhost:PORT` (no DNS rebinding) and whose
///   `Origin` is the configured server's origin (no other web site can use the card).
/// - Status, sign-in and the hand-over need no token (they are how a page of our server gets a session);
///   the renewal needs the page's bridge token, which only pages of the current session have.
/// - State changes only on POST. It never exposes keys, certificates' private parts or card administration.
///
/// Routes: `GET /v1/status`, `POST /v1/login`, `POST /v1/login/role`, `POST /v1/handover`,
/// `POST /v1/renewal` (passcode), `GET /v1/renewal` (progress), `POST /v1/unlock/options|code|verify|passcode`
/// (self-service unlock), `POST /v1/passcode` (change, signed in); and at the RA desk, for the card holder's card in
/// the second reader: `GET /v1/subject`, `POST /v1/subject/renewal` (the holder's passcode), `GET /v1/subject/renewal`,
/// `POST /v1/subject/unlock` (the holder's new passcode, twice), `POST /v1/subject/repair` (the holder's passcode; progress
/// as for renewal), `POST /v1/subject/clear`, `POST /v1/subject/issue` (a blank card, for a person).
public struct LocalBridge: Sendable {
    let agent: WorkstationAgent
    let origin: String
    let port: Int

    public init(agent: WorkstationAgent, serverOrigin: String, port: Int) {
        self.agent = agent
        self.origin = serverOrigin
        self.port = port
    }

    public func application(logger: Logger, onRunning: @escaping @Sendable (Int?) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: BridgeGuard(origin: origin, port: port))
        let api = router.group("v1")
        api.get("status") { _, _ in await agent.status() }
        api.post("login") { request, context -> BridgeAPI.Status in
            let body = try await request.decode(as: BridgeAPI.Passcode.self, context: context)
            try await agent.signIn(passcode: body.passcode, fromTerminal: false)
            // The page that typed the passcode, and only it, may join the session.
            var status = await agent.status()
            status.handoverSecret = await agent.newHandoverSecret()
            return status
        }
        api.post("login/role") { request, context -> BridgeAPI.Status in
            let body = try await request.decode(as: BridgeAPI.ChooseRole.self, context: context)
            try await agent.chooseRole(number: body.number, fromTerminal: false)
            return await agent.status()
        }
        api.post("handover") { request, context in
            try await agent.handover(try await request.decode(as: BridgeAPI.HandoverRequest.self, context: context))
        }
        // Self-service unlock: before sign-in (the card is locked, or its passcode forgotten).
        api.post("unlock/options") { _, _ in try await agent.unlockOptions() }
        api.post("unlock/code") { request, context in
            let body = try await request.decode(as: BridgeAPI.UnlockChannel.self, context: context)
            return try await agent.requestUnlockCode(channel: body.channel)
        }
        api.post("unlock/verify") { request, context -> BridgeAPI.Status in
            let body = try await request.decode(as: BridgeAPI.UnlockCode.self, context: context)
            try await agent.verifyUnlockCode(body.code)
            return await agent.status()
        }
        api.post("unlock/passcode") { request, context -> BridgeAPI.Status in
            let body = try await request.decode(as: BridgeAPI.NewPasscode.self, context: context)
            try await agent.resetPasscode(body.passcode, repeated: body.repeated)
            return await agent.status()
        }
        api.post("passcode") { request, context -> BridgeAPI.Status in
            try await requireToken(request)
            let body = try await request.decode(as: BridgeAPI.ChangePasscode.self, context: context)
            try await agent.changePasscode(current: body.current, new: body.passcode, repeated: body.repeated)
            return await agent.status()
        }
        api.post("contacts/consent") { request, context -> BridgeAPI.ContactSignature in
            try await requireToken(request)
            return try await agent.contactConsent(try await request.decode(as: BridgeAPI.ContactConsent.self, context: context))
        }
        api.post("renewal") { request, context -> Response in
            try await requireToken(request)
            let body = try await request.decode(as: BridgeAPI.Passcode.self, context: context)
            try await agent.startRenewal(passcode: body.passcode)
            return try await Self.json(agent.renewalProgress, status: .accepted)
        }
        api.get("renewal") { request, _ -> BridgeAPI.RenewalProgress in
            try await requireToken(request)
            return await agent.renewalProgress
        }
        // The RA desk: the card holder's card in the second reader (the page of a signed-in RA; the server decides
        // whether this RA may renew or unlock that card).
        api.get("subject") { request, _ -> BridgeAPI.SubjectCard in
            try await requireToken(request)
            return try await agent.subjectCard()
        }
        api.post("subject/renewal") { request, context -> Response in
            try await requireToken(request)
            let body = try await request.decode(as: BridgeAPI.Passcode.self, context: context)
            try await agent.startSubjectRenewal(passcode: body.passcode)
            return try await Self.json(agent.subjectRenewalProgress, status: .accepted)
        }
        api.post("subject/repair") { request, context -> Response in
            try await requireToken(request)
            let body = try await request.decode(as: BridgeAPI.Passcode.self, context: context)
            try await agent.startSubjectRenewal(passcode: body.passcode, repair: true)
            return try await Self.json(agent.subjectRenewalProgress, status: .accepted)
        }
        api.post("subject/clear") { request, _ -> BridgeAPI.SubjectCard in
            try await requireToken(request)
            try await agent.clearSubject()
            return try await agent.subjectCard()
        }
        api.get("subject/renewal") { request, _ -> BridgeAPI.RenewalProgress in
            try await requireToken(request)
            return await agent.subjectRenewalProgress
        }
        api.post("subject/issue") { request, context -> BridgeAPI.SubjectCard in
            try await requireToken(request)
            let body = try await request.decode(as: BridgeAPI.IssueCard.self, context: context)
            _ = try await agent.issueSubjectCard(userID: body.userID, passcode: body.passcode, repeated: body.repeated)
            return try await agent.subjectCard()
        }
        api.post("subject/unlock") { request, context -> BridgeAPI.SubjectCard in
            try await requireToken(request)
            let body = try await request.decode(as: BridgeAPI.NewPasscode.self, context: context)
            try await agent.unlockSubject(passcode: body.passcode, repeated: body.repeated)
            return try await agent.subjectCard()
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "CardDesk agent"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port) },
            logger: logger
        )
    }

    private func requireToken(_ request: Request) async throws {
        let given = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil } ?? ""
        guard let expected = await agent.bridgeToken(), ConstantTime.equal(given, expected) else {
            throw CardDeskError(.authenticationFailed, "This page is not paired with the agent's current session. Reload the page to sign in again.")
        }
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(value))))
    }
}

extension BridgeAPI.Status: ResponseEncodable {}
extension BridgeAPI.RenewalProgress: ResponseEncodable {}
extension BridgeAPI.ContactSignature: ResponseEncodable {}
extension BridgeAPI.SubjectCard: ResponseEncodable {}
extension LoginAPI.Handover: ResponseEncodable {}
extension UnlockAPI.Options: ResponseEncodable {}
extension UnlockAPI.CodeSent: ResponseEncodable {}

/// Host and Origin checks, CORS for the one allowed origin (with Chrome's private network access preflight), and
/// errors as `{"error": {"code", "message"}}`.
struct BridgeGuard<Context: RequestContext>: RouterMiddleware {
    let origin: String
    let hosts: Set<String>

    init(origin: String, port: Int) {
        self.origin = origin
        self.hosts = ["127.0.0.1:\(port)", "localhost:\(port)"]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let host = (request.head.authority ?? "").lowercased()
        guard hosts.contains(host) else {
            return try Self.refuse(.notAuthorised, "Refused: the CardDesk agent answers only at \(hosts.sorted().joined(separator: " or ")).", status: .forbidden, origin: nil)
        }
        guard request.headers[.origin] == origin else {
            return try Self.refuse(.notAuthorised, "Refused: the CardDesk agent answers only pages from \(origin).", status: .forbidden, origin: nil)
        }
        var response: Response
        if request.method == .options {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST"
            response.headers[.accessControlAllowHeaders] = "Content-Type, Authorization"
            response.headers[.accessControlMaxAge] = "600"
            response.headers[HTTPField.Name("Access-Control-Allow-Private-Network")!] = "true"
        } else {
            do {
                response = try await next(request, context)
            } catch let error as CardDeskError {
                response = try Self.refuse(error.code, error.reason, status: Self.status(for: error.code), origin: nil)
            }
        }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.vary] = "Origin"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func refuse(_ code: CardDeskError.Code, _ message: String, status: HTTPResponse.Status, origin: String?) throws -> Response {
        try LocalBridge.json(APIErrorBody(error: .init(code: code.name, message: message)), status: status)
    }

    static func status(for code: CardDeskError.Code) -> HTTPResponse.Status {
        HTTPResponse.Status(code: code.httpStatus)
    }
}
