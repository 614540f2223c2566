public import CardDeskAPI
import CardDeskCore
import Foundation
public import Hummingbird
import HTTPTypes
import RegistrationAuthority

extension RADeskAPI.EnrolmentToken: ResponseEncodable {}
extension RADeskAPI.ClearRelease: ResponseEncodable {}

/// The card work of the RA desk, asked by the workstation agent for the holder's card in its second reader, with the
/// RA's own session token (`Authorization: Bearer`; the session must be working in an RA role):
/// - `POST /api/v1/ra/renewals` → start or resume the renewal of the card's certificates (the card signs a renewal
///   challenge, as in self-renewal); the steps then go through `/api/v1/renewals/{id}/…` with the renewal's token
/// - `POST /api/v1/ra/unlocks` → the card's PUK and its next PUK, to reset the passcode at the desk, with a token
/// - `POST /api/v1/ra/unlocks/done` → the card was reset and its PUK changed
/// - `POST /api/v1/ra/repairs` → new keys and certificates on the card, at any time (steps as for a renewal)
/// - `POST /api/v1/ra/clears` → the card cancelled and its certificates revoked; its keys to reset it to factory state
/// - `POST /api/v1/ra/enrolments` → a single-use token to enrol a blank card for a person (`/api/v1/enrolments/…` next)
/// Every refusal is a 403 with the reason, and audited (`RAConsole`).
struct RADeskRoutes {
    let login: LoginService
    let console: RAConsole
    let limiter: RateLimiter

    func register(on router: Router<WebContext>) {
        let api = router.group("api/v1/ra")
        api.post("renewals") { request, context in
            let desk = try await desk(request, context: context)
            let body = try await request.decode(as: RenewalAPI.Start.self, context: context)
            return try await console.renewCard(
                desk, cardSerial: body.cardSerial, challenge: body.challenge, signature: Array(body.signature), witness: body.witness.map(Array.init)
            )
        }
        api.post("unlocks") { request, context in
            let desk = try await desk(request, context: context)
            let body = try await request.decode(as: UnlockAPI.Start.self, context: context)
            return try await console.unlockCard(desk, cardSerial: body.cardSerial)
        }
        api.post("repairs") { request, context in
            let desk = try await desk(request, context: context)
            let body = try await request.decode(as: RADeskAPI.Card.self, context: context)
            return try await console.repairCard(desk, cardSerial: body.cardSerial)
        }
        api.post("clears") { request, context in
            let desk = try await desk(request, context: context)
            let body = try await request.decode(as: RADeskAPI.Card.self, context: context)
            return try await console.clearCard(desk, cardSerial: body.cardSerial)
        }
        api.post("enrolments") { request, context in
            let desk = try await desk(request, context: context)
            let body = try await request.decode(as: RADeskAPI.Issue.self, context: context)
            return RADeskAPI.EnrolmentToken(token: try await console.issueCard(desk, userID: body.userID, keyAlgorithm: body.keyAlgorithm))
        }
        api.post("unlocks/done") { request, context -> HTTPResponse.Status in
            let desk = try await desk(request, context: context)
            let body = try await request.decode(as: RADeskAPI.UnlockDone.self, context: context)
            try await console.completeUnlock(desk, cardSerial: body.cardSerial, token: body.token)
            return .noContent
        }
    }

    /// The RA desk of the session whose token the request carries.
    private func desk(_ request: Request, context: WebContext) async throws -> RAConsole.Desk {
        try await limiter.check(.signIn, "addr:\(context.peerAddress)")
        guard let token = try RenewalRoutes.bearer(request) else {
            throw CardDeskError(.authenticationFailed, "Sign in to the RA console with your own smartcard first.")
        }
        return try await console.desk(for: try await login.current(token: token))
    }
}
