public import CardDeskAPI
import CardDeskCore
import CertificateAuthority
import Foundation
public import Hummingbird
import RegistrationAuthority
import Smartcard
import X509

extension RenewalView: ResponseEncodable {}
extension CardRenewalStatus: ResponseEncodable {}
extension RenewalAPI.Challenge: ResponseEncodable {}
extension RenewalAPI.Administration: ResponseEncodable {}
extension RenewalAPI.Issued: ResponseEncodable {}

/// The renewal API, one handler per step of the renewal (see `RenewalEngine`):
/// - `POST /api/v1/challenges` → a single-use challenge for the card to sign
/// - `GET /api/v1/cards/{serial}/renewal` → whether renewal is available, and from when
/// - `POST /api/v1/renewals` → start or resume, authenticated by the card's signature; returns a bearer token (and,
///   given the card's management-key witness, its answer)
/// - `POST /api/v1/renewals/{id}/administration` → the answer to the card's management-key witness (when not given at start)
/// - `POST /api/v1/renewals/{id}/certificates` → the new certificate for a CSR signed by the new key
/// - `POST /api/v1/renewals/{id}/confirmations` → the card proves the new key is in place; the old one is revoked
struct RenewalRoutes {
    let engine: RenewalEngine
    let limiter: RateLimiter

    func register(on router: Router<WebContext>) {
        let api = router.group("api/v1")
        api.post("challenges") { _, context in
            try await limiter.check(.challenges, "addr:\(context.peerAddress)")
            return RenewalAPI.Challenge(challenge: try await engine.challenge())
        }
        api.get("cards/:serial/renewal") { _, context in
            try await limiter.check(.signIn, "addr:\(context.peerAddress)")
            return try await engine.status(cardSerial: try context.parameters.require("serial"))
        }
        api.post("renewals") { request, context in
            try await limiter.check(.signIn, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: RenewalAPI.Start.self, context: context)
            try await limiter.check(.renewalPerCard, "card:\(try Identifiers.cardSerial(body.cardSerial))")
            return try await engine.start(
                cardSerial: body.cardSerial, challenge: body.challenge, signature: Array(body.signature), encryptedWitness: body.witness.map(Array.init)
            )
        }
        api.post("renewals/:id/administration") { request, context in
            let body = try await request.decode(as: RenewalAPI.Administer.self, context: context)
            let answer = try await engine.administer(
                renewalID: try context.parameters.require("id"), token: try Self.token(request), profile: body.profile, encryptedWitness: Array(body.witness)
            )
            return RenewalAPI.Administration(witness: Data(answer.witness), challenge: Data(answer.challenge))
        }
        api.post("renewals/:id/certificates") { request, context in
            let body = try await request.decode(as: RenewalAPI.Submit.self, context: context)
            let der = try await engine.submit(
                renewalID: try context.parameters.require("id"), token: try Self.token(request), profile: body.profile, csr: Array(body.csr),
                attestation: body.attestation.map(Array.init), attestationIssuer: body.attestationIssuer.map(Array.init)
            )
            return RenewalAPI.Issued(certificate: Data(der))
        }
        api.post("renewals/:id/confirmations") { request, context in
            let body = try await request.decode(as: RenewalAPI.Confirm.self, context: context)
            // With the next key's certificate request (one round trip fewer): see `RenewalEngine.confirm`.
            return try await engine.confirm(
                renewalID: try context.parameters.require("id"), token: try Self.token(request), profile: body.profile, signature: Array(body.signature),
                next: body.next
            )
        }
    }

    static func token(_ request: Request) throws -> String {
        guard let token = try bearer(request) else {
            throw CardDeskError(.authenticationFailed, "This request needs the renewal's token. Run the renewal again.")
        }
        return token
    }

    /// The `Authorization: Bearer` token, checked for form, if the request has one.
    static func bearer(_ request: Request) throws -> String? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        return try Identifiers.token(String(header.dropFirst("Bearer ".count)))
    }
}
