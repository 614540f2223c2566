public import CardDeskAPI
public import CardDeskCore
public import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How `ServerClient` exchanges one HTTP request for its answer. The agent uses URLSession; a load generator (the
/// benchmark, standing for thousands of workstations) may bring a cheaper one.
public protocol ServerTransport: Sendable {
    /// Sends the request and returns the status and body of the answer. Throws `ServerTransportError.notSent` when
    /// the request surely reached no server (the connection was refused), anything else when there was no answer.
    func exchange(method: String, url: URL, headers: [(name: String, value: String)], body: Data?) async throws -> (status: Int, body: Data)
}

public enum ServerTransportError: Error, Sendable {
    /// The connection was refused: nothing was sent.
    case notSent(String)
}

/// The agent's transport: URLSession, ephemeral, 30 s per request.
public struct URLSessionTransport: ServerTransport {
    let session: URLSession

    public init() {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 30
        self.session = URLSession(configuration: configuration)
    }

    public func exchange(method: String, url: URL, headers: [(name: String, value: String)], body: Data?) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: url)
        request.httpMethod = method
        for header in headers { request.setValue(header.value, forHTTPHeaderField: header.name) }
        request.httpBody = body
        do {
            // Not a child of the caller's task: FoundationNetworking on Linux can deadlock when a task is cancelled
            // just as its request completes (URLSessionTask.cancel waits on the session's queue, which waits on
            // the task's status lock). Seen as an agent that never exits when its bridge port is taken; a request
            // is left to end on its own (its timeout) instead of being cancelled.
            let session = session
            let (data, response) = try await Task { try await session.data(for: request) }.value
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        } catch let error as URLError where error.code == .cannotConnectToHost {
            throw ServerTransportError.notSent(error.localizedDescription)
        }
    }
}

/// The agent's side of the CardDesk HTTP API. Every failure becomes a `CardDeskError` with the server's own code
/// and message, or `.serverUnreachable` when there is no answer.
public struct ServerClient: Sendable {
    public let baseURL: URL
    let transport: any ServerTransport

    public init(baseURL: URL, transport: any ServerTransport = URLSessionTransport()) {
        self.baseURL = baseURL
        self.transport = transport
    }

    public func challenge() async throws -> String {
        try await send("POST", "api/v1/challenges", body: Optional<String>.none, as: RenewalAPI.Challenge.self, retry: .always).challenge
    }

    public func renewalStatus(cardSerial: String) async throws -> CardRenewalStatus {
        try await send("GET", "api/v1/cards/\(cardSerial)/renewal", body: Optional<String>.none, as: CardRenewalStatus.self, retry: .always)
    }

    public func startRenewal(_ body: RenewalAPI.Start) async throws -> RenewalView {
        try await send("POST", "api/v1/renewals", body: body, as: RenewalView.self)
    }

    public func administer(renewal: String, token: String, _ body: RenewalAPI.Administer) async throws -> RenewalAPI.Administration {
        try await send("POST", "api/v1/renewals/\(renewal)/administration", token: token, body: body, as: RenewalAPI.Administration.self, retry: .always)
    }

    public func submit(renewal: String, token: String, _ body: RenewalAPI.Submit) async throws -> RenewalAPI.Issued {
        try await send("POST", "api/v1/renewals/\(renewal)/certificates", token: token, body: body, as: RenewalAPI.Issued.self, retry: .always)
    }

    public func confirm(renewal: String, token: String, _ body: RenewalAPI.Confirm) async throws -> RenewalView {
        try await send("POST", "api/v1/renewals/\(renewal)/confirmations", token: token, body: body, as: RenewalView.self, retry: .always)
    }

    // MARK: Signing in

    public func loginChallenge() async throws -> String {
        try await send("POST", "api/v1/login/challenges", body: Optional<String>.none, as: RenewalAPI.Challenge.self, retry: .always).challenge
    }

    public func login(_ body: LoginAPI.Login) async throws -> SessionView {
        try await send("POST", "api/v1/sessions", body: body, as: SessionView.self)
    }

    public func session(token: String) async throws -> SessionView {
        try await send("GET", "api/v1/session", token: token, body: Optional<String>.none, as: SessionView.self, retry: .always)
    }

    public func chooseRole(token: String, number: Int) async throws -> SessionView {
        try await send("POST", "api/v1/session/role", token: token, body: LoginAPI.ChooseRole(number: number), as: SessionView.self)
    }

    public func logout(token: String, reason: String) async throws {
        let query = reason.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "logged%20out"
        _ = try await send("DELETE", "api/v1/session?reason=\(query)", token: token, body: Optional<String>.none, as: Empty.self)
    }

    // MARK: Self-service unlock

    public func unlockOptions(cardSerial: String) async throws -> UnlockAPI.Options {
        try await send("POST", "api/v1/unlock/options", body: UnlockAPI.Start(cardSerial: cardSerial), as: UnlockAPI.Options.self)
    }

    public func requestUnlockCode(cardSerial: String, channel: ContactChannel) async throws -> UnlockAPI.CodeSent {
        try await send("POST", "api/v1/unlock/codes", body: UnlockAPI.RequestCode(cardSerial: cardSerial, channel: channel), as: UnlockAPI.CodeSent.self)
    }

    public func verifyUnlockCode(unlockID: String, code: String) async throws -> UnlockAPI.Verified {
        try await send("POST", "api/v1/unlock/\(unlockID)/verification", body: UnlockAPI.Verify(code: code), as: UnlockAPI.Verified.self)
    }

    public func releasePUK(unlockID: String, token: String) async throws -> UnlockAPI.PUKRelease {
        try await send("POST", "api/v1/unlock/\(unlockID)/puk", token: token, body: Optional<String>.none, as: UnlockAPI.PUKRelease.self)
    }

    public func pukChallenge() async throws -> String {
        try await send("POST", "api/v1/cards/puk-challenges", body: Optional<String>.none, as: RenewalAPI.Challenge.self, retry: .always).challenge
    }

    public func rotatePUK(_ body: CardSignedChallenge) async throws -> UnlockAPI.PUKRelease {
        try await send("POST", "api/v1/cards/\(body.cardSerial)/puk-rotations", body: body, as: UnlockAPI.PUKRelease.self)
    }

    public func completePUKRotation(cardSerial: String, token: String) async throws {
        _ = try await send("POST", "api/v1/cards/\(cardSerial)/puk-rotations/done", token: token, body: Optional<String>.none, as: Empty.self)
    }

    public func completeUnlock(unlockID: String, token: String) async throws {
        _ = try await send("POST", "api/v1/unlock/\(unlockID)/completion", token: token, body: Optional<String>.none, as: Empty.self)
    }

    // MARK: The RA desk's card work (the RA's session token; the holder's card in the second reader)

    public func startRARenewal(sessionToken: String, _ body: RenewalAPI.Start) async throws -> RenewalView {
        try await send("POST", "api/v1/ra/renewals", token: sessionToken, body: body, as: RenewalView.self)
    }

    public func raUnlock(sessionToken: String, cardSerial: String) async throws -> UnlockAPI.PUKRelease {
        try await send("POST", "api/v1/ra/unlocks", token: sessionToken, body: UnlockAPI.Start(cardSerial: cardSerial), as: UnlockAPI.PUKRelease.self)
    }

    public func startRARepair(sessionToken: String, cardSerial: String) async throws -> RenewalView {
        try await send("POST", "api/v1/ra/repairs", token: sessionToken, body: RADeskAPI.Card(cardSerial: cardSerial), as: RenewalView.self)
    }

    public func raClear(sessionToken: String, cardSerial: String) async throws -> RADeskAPI.ClearRelease {
        try await send("POST", "api/v1/ra/clears", token: sessionToken, body: RADeskAPI.Card(cardSerial: cardSerial), as: RADeskAPI.ClearRelease.self)
    }

    public func raEnrolmentToken(sessionToken: String, userID: String, keyAlgorithm: String) async throws -> String {
        try await send("POST", "api/v1/ra/enrolments", token: sessionToken, body: RADeskAPI.Issue(userID: userID, keyAlgorithm: keyAlgorithm), as: RADeskAPI.EnrolmentToken.self).token
    }

    public func completeRAUnlock(sessionToken: String, cardSerial: String, token: String) async throws {
        _ = try await send("POST", "api/v1/ra/unlocks/done", token: sessionToken, body: RADeskAPI.UnlockDone(cardSerial: cardSerial, token: token), as: Empty.self)
    }

    // MARK: Enrolling a card

    public func beginEnrolment(token: String) async throws -> EnrolmentAPI.Begun {
        try await send("POST", "api/v1/enrolments", body: EnrolmentAPI.Begin(token: token), as: EnrolmentAPI.Begun.self)
    }

    public func keepFactoryManagementKey(token: String) async throws {
        _ = try await send("POST", "api/v1/enrolments/management-key-kept", token: token, body: Optional<String>.none, as: Empty.self)
    }

    public func submitEnrolment(token: String, _ body: EnrolmentAPI.Submit) async throws -> RenewalAPI.Issued {
        try await send("POST", "api/v1/enrolments/certificates", token: token, body: body, as: RenewalAPI.Issued.self)
    }

    public func completeEnrolment(token: String, _ body: EnrolmentAPI.Complete) async throws {
        _ = try await send("POST", "api/v1/enrolments/completion", token: token, body: body, as: Empty.self)
    }

    /// A single-use code with which a browser joins this session.
    public func handover(token: String) async throws -> LoginAPI.Handover {
        try await send("POST", "api/v1/session/handovers", token: token, body: Optional<String>.none, as: LoginAPI.Handover.self)
    }

    /// "An agent runs on this workstation, its bridge on this port"; with the session token, also keeps the session
    /// open and says whether it still is.
    public func checkIn(bridgePort: Int, token: String?) async throws -> LoginAPI.AgentCheckInAnswer {
        try await send("POST", "api/v1/agents/checkin", token: token, body: LoginAPI.AgentCheckIn(bridgePort: bridgePort), as: LoginAPI.AgentCheckInAnswer.self, retry: .always)
    }

    /// The server's origin (`scheme://host[:port]`): the only origin the localhost bridge answers.
    public var origin: String {
        let components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false)
        let scheme = components?.scheme?.lowercased() ?? "http"
        let host = components?.host ?? ""
        let port = components?.port.map { ":\($0)" } ?? ""
        return "\(scheme)://\(host)\(port)"
    }

    struct Empty: Decodable { init() {} }

    /// When a request is sent again after a failure that may be the server's instance going away (several
    /// instances behind a load balancer: the next attempt reaches another).
    enum Retry: Sendable {
        /// Safe to repeat whatever the server did with it (reads, new challenges, the renewal's steps, which the
        /// server makes idempotent): repeated after no answer, or a proxy's 502/503/504.
        case always
        /// Only when it surely reached no server (the connection was refused): repeating it could do it twice.
        case unlessSent
    }

    /// How long to wait before each repeat: together about two seconds, longer than a load balancer takes to
    /// notice an instance is gone.
    static let retryDelays: [Duration] = [.milliseconds(100), .milliseconds(400), .milliseconds(1500)]

    func send<Body: Encodable, Answer: Decodable>(
        _ method: String, _ path: String, token: String? = nil, body: Body?, as: Answer.Type, retry: Retry = .unlessSent
    ) async throws -> Answer {
        // The path may carry a query; appendingPathComponent would escape its "?".
        guard let url = URL(string: path, relativeTo: baseURL.absoluteString.hasSuffix("/") ? baseURL : baseURL.appendingPathComponent("")) else {
            throw CardDeskError(.internalFailure, "Cannot build the address for \(path).")
        }
        var headers: [(name: String, value: String)] = []
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        var encoded: Data?
        if let body {
            headers.append(("Content-Type", "application/json"))
            encoded = try JSONEncoder().encode(body)
        }
        var attempt = 0
        while true {
            let data: Data
            let status: Int
            do {
                (status, data) = try await transport.exchange(method: method, url: url, headers: headers, body: encoded)
            } catch {
                let neverSent = error is ServerTransportError
                if attempt < Self.retryDelays.count, retry == .always || neverSent, !Task.isCancelled {
                    try await Task.sleep(for: Self.retryDelays[attempt])
                    attempt += 1
                    continue
                }
                let reason = switch error {
                case ServerTransportError.notSent(let reason): reason
                default: error.localizedDescription
                }
                throw CardDeskError(.serverUnreachable, "Cannot reach the CardDesk server at \(baseURL.absoluteString): \(reason). Check the address and your network, then try again.")
            }
            // A proxy's own 502/503/504 (no CardDesk error in it): the instance behind it is gone or going.
            if retry == .always, [502, 503, 504].contains(status), (try? JSONDecoder().decode(APIErrorBody.self, from: data)) == nil,
               attempt < Self.retryDelays.count, !Task.isCancelled {
                try await Task.sleep(for: Self.retryDelays[attempt])
                attempt += 1
                continue
            }
            return try decode(data, status: status, path: path)
        }
    }

    private func decode<Answer: Decodable>(_ data: Data, status: Int, path: String) throws -> Answer {
        guard (200..<300).contains(status) else {
            if let failure = try? JSONDecoder().decode(APIErrorBody.self, from: data) {
                throw CardDeskError(CardDeskError.Code.named(failure.error.code) ?? .internalFailure, failure.error.message)
            }
            throw CardDeskError(.serverUnreachable, "The CardDesk server at \(baseURL.absoluteString) answered HTTP \(status) to \(path).")
        }
        if Answer.self == Empty.self, let empty = Empty() as? Answer { return empty }
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw CardDeskError(.internalFailure, "The CardDesk server's answer to \(path) could not be read: \(error).")
        }
    }
}
