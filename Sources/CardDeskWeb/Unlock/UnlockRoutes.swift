public import CardDeskAPI
import CardDeskCore
import Foundation
public import Hummingbird
import RegistrationAuthority

extension UnlockAPI.Options: ResponseEncodable {}
extension UnlockAPI.CodeSent: ResponseEncodable {}
extension UnlockAPI.Verified: ResponseEncodable {}

/// Self-service unlock for the agent (one handler per step; the new passcode never comes here):
/// - `POST /api/v1/unlock/options` → the card's holder's confirmed addresses, masked
/// - `POST /api/v1/unlock/codes` → send a code to one of them
/// - `POST /api/v1/unlock/{id}/verification` → check the code; answers a token for this card
/// - `POST /api/v1/unlock/{id}/authorisations` → (token) the answer to the card's challenge for resetting its passcode
/// - `POST /api/v1/unlock/{id}/completion` → (token) the card was reset
struct UnlockRoutes {
    let unlock: UnlockService
    let limiter: RateLimiter

    func register(on router: Router<WebContext>) {
        let api = router.group("api/v1/unlock")
        api.post("options") { request, context in
            try await limiter.check(.unlock, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: UnlockAPI.Start.self, context: context)
            try await limiter.check(.unlockPerCard, "card:\(try Identifiers.cardSerial(body.cardSerial))")
            return try await unlock.options(cardSerial: body.cardSerial)
        }
        api.post("codes") { request, context in
            try await limiter.check(.unlock, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: UnlockAPI.RequestCode.self, context: context)
            try await limiter.check(.unlockPerCard, "card:\(try Identifiers.cardSerial(body.cardSerial))")
            return try await unlock.requestCode(cardSerial: body.cardSerial, channel: body.channel)
        }
        api.post(":id/verification") { request, context in
            try await limiter.check(.codeChecks, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: UnlockAPI.Verify.self, context: context)
            return try await unlock.verify(unlockID: try context.parameters.require("id"), code: body.code)
        }
        api.post(":id/authorisations") { request, context in
            let body = try await request.decode(as: UnlockAPI.Authorise.self, context: context)
            let response = try await unlock.authorise(
                unlockID: try context.parameters.require("id"), token: try RenewalRoutes.token(request), cardChallenge: Array(body.cardChallenge)
            )
            return RenewalAPI.Authorisation(response: Data(response))
        }
        api.post(":id/completion") { request, context -> HTTPResponse.Status in
            try await unlock.complete(unlockID: try context.parameters.require("id"), token: try RenewalRoutes.token(request))
            return .noContent
        }
    }
}
