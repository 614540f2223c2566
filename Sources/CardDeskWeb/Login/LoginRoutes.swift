public import CardDeskAPI
import CardDeskCore
import Foundation
public import Hummingbird
import RegistrationAuthority

extension SessionView: ResponseEncodable {}
extension LoginAPI.Handover: ResponseEncodable {}
extension LoginAPI.AgentPresence: ResponseEncodable {}
extension LoginAPI.SessionStatus: ResponseEncodable {}
extension LoginAPI.AgentCheckInAnswer: ResponseEncodable {}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

/// Signing in with a card (one handler per operation):
/// - `POST /api/v1/login/challenges` → a single-use challenge for the card to sign
/// - `POST /api/v1/sessions` → sign in with the card's signature; the answer carries the session token
/// - `GET /api/v1/session` → the signed-in user, roles, role in use, certificates and renewal status
/// - `POST /api/v1/session/role` → choose a role by its number
/// - `DELETE /api/v1/session?reason=card%20removed` → end the session
/// - `POST /api/v1/session/handovers` → (agent) a single-use code for a browser to join this session
/// - `POST /api/v1/agents/checkin` → (agent) "an agent runs on this workstation"; with its session token, also keeps
///   that session open and answers whether it still is; without one, the answer carries a sign-in challenge for the
///   agent's next sign-in (it then needs no `login/challenges` request)
/// - `GET /api/v1/agents/presence` → (page) whether an agent checked in from this address lately
struct LoginRoutes {
    let login: LoginService
    let presence: AgentPresence
    let limiter: RateLimiter

    func register(on router: Router<WebContext>) {
        let api = router.group("api/v1")
        api.post("login/challenges") { _, context in
            try await limiter.check(.challenges, "addr:\(context.peerAddress)")
            return RenewalAPI.Challenge(challenge: try await login.challenge())
        }
        api.post("sessions") { request, context in
            try await limiter.check(.signIn, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: LoginAPI.Login.self, context: context)
            try await limiter.check(.signInPerCard, "card:\(try Identifiers.cardSerial(body.cardSerial))")
            return try await login.login(cardSerial: body.cardSerial, challenge: body.challenge, signature: Array(body.signature))
        }
        api.get("session") { request, _ in
            try await login.current(token: try RenewalRoutes.token(request))
        }
        api.post("session/role") { request, context in
            let body = try await request.decode(as: LoginAPI.ChooseRole.self, context: context)
            return try await login.chooseRole(token: try RenewalRoutes.token(request), number: body.number)
        }
        api.delete("session") { request, _ -> HTTPResponse.Status in
            let reason = request.uri.queryParameters.get("reason") ?? "logged out"
            try await login.logout(token: try RenewalRoutes.token(request), reason: String(reason.prefix(64)))
            return .noContent
        }
        api.post("session/handovers") { request, _ in
            try await login.handover(token: try RenewalRoutes.token(request))
        }
        api.post("agents/checkin") { request, context in
            let body = try await request.decode(as: LoginAPI.AgentCheckIn.self, context: context)
            guard (1...65535).contains(body.bridgePort) else { throw CardDeskError(.invalidInput, "The bridge port must be from 1 to 65535.") }
            try await presence.checkIn(address: context.peerAddress, bridgePort: body.bridgePort)
            // A challenge only for an agent without a session (one signed in needs none until its card comes out):
            // the keep-alive check-ins, most of them in a working day, stay without one.
            let token = try RenewalRoutes.bearer(request)
            return LoginAPI.AgentCheckInAnswer(
                session: try await token.asyncMap { try await login.keepAlive(token: $0) },
                challenge: token == nil ? try await login.challenge() : nil
            )
        }
        api.get("agents/presence") { _, context in
            let port = try await presence.seen(address: context.peerAddress)
            return LoginAPI.AgentPresence(seen: port != nil, bridgePort: port)
        }
    }
}
