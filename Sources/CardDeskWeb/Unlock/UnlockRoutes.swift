public import CardDeskAPI
import CardDeskCore
import Foundation
public import Hummingbird
import RegistrationAuthority

extension UnlockAPI.Options: ResponseEncodable {}
extension UnlockAPI.CodeSent: ResponseEncodable {}
extension UnlockAPI.Verified: ResponseEncodable {}
extension UnlockAPI.PUKRelease: ResponseEncodable {}

/// Self-service unlock for the agent (one handler per step; the new passcode never comes here):
/// - `POST /api/v1/unlock/options` → the card's holder's confirmed addresses, masked
/// - `POST /api/v1/unlock/codes` → send a code to one of them
/// - `POST /api/v1/unlock/{id}/verification` → check the code; answers a token for this card
/// - `POST /api/v1/unlock/{id}/puk` → (token) the card's PUK for the reset, and the new PUK it gets right after
/// - `POST /api/v1/unlock/{id}/completion` → (token) the card was reset and its PUK changed
/// and, for a PUK released but not changed (the agent stopped in between), at the card's next contact:
/// - `POST /api/v1/cards/{serial}/puk-rotations` → (the card's signature over a "puk" challenge) both PUKs again
/// - `POST /api/v1/cards/{serial}/puk-rotations/done` → (the token from the step before) the card's PUK was changed
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
        api.post(":id/puk") { request, context in
            try await limiter.check(.codeChecks, "addr:\(context.peerAddress)")
            return try await unlock.releasePUK(unlockID: try context.parameters.require("id"), token: try RenewalRoutes.token(request))
        }
        api.post(":id/completion") { request, context -> HTTPResponse.Status in
            try await unlock.complete(unlockID: try context.parameters.require("id"), token: try RenewalRoutes.token(request))
            return .noContent
        }
        let cards = router.group("api/v1/cards")
        cards.post("puk-challenges") { _, context in
            try await limiter.check(.challenges, "addr:\(context.peerAddress)")
            return RenewalAPI.Challenge(challenge: try await unlock.pukChallenge())
        }
        cards.post(":serial/puk-rotations") { request, context in
            try await limiter.check(.signIn, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: CardSignedChallenge.self, context: context)
            let serial: String = try context.parameters.require("serial")
            guard body.cardSerial == serial else { throw CardDeskError(.invalidInput, "The card serial in the path and in the body differ.") }
            try await limiter.check(.unlockPerCard, "card:\(try Identifiers.cardSerial(serial))")
            return try await unlock.rotatePUK(cardSerial: serial, challenge: body.challenge, signature: Array(body.signature))
        }
        cards.post(":serial/puk-rotations/done") { request, context -> HTTPResponse.Status in
            try await unlock.completePUKRotation(cardSerial: try context.parameters.require("serial"), token: try RenewalRoutes.token(request))
            return .noContent
        }
    }
}
