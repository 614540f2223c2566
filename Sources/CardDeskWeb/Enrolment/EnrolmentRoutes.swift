public import CardDeskAPI
import CardDeskCore
import Foundation
public import Hummingbird
import RegistrationAuthority

extension EnrolmentAPI.Begun: ResponseEncodable {}

/// Enrolling a blank card at a workstation with an RA's token (see `CardEnrolment`); the token is the body of the
/// first request and the bearer of the others:
/// - `POST /api/v1/enrolments` → the card's identity, management key and PUK
/// - `POST /api/v1/enrolments/management-key-kept` → the card cannot change its management key
/// - `POST /api/v1/enrolments/certificates` → the certificate for a CSR signed by a key generated on the card
/// - `POST /api/v1/enrolments/completion` → the card signs with its new key; it becomes active
struct EnrolmentRoutes {
    let enrolment: CardEnrolment
    let limiter: RateLimiter

    func register(on router: Router<WebContext>) {
        let api = router.group("api/v1")
        api.post("enrolments") { request, context in
            try await limiter.check(.codeChecks, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: EnrolmentAPI.Begin.self, context: context)
            return try await enrolment.begin(token: body.token)
        }
        api.post("enrolments/management-key-kept") { request, context -> HTTPResponse.Status in
            try await limiter.check(.codeChecks, "addr:\(context.peerAddress)")
            try await enrolment.keepFactoryManagementKey(token: try RenewalRoutes.token(request))
            return .noContent
        }
        api.post("enrolments/certificates") { request, context in
            try await limiter.check(.codeChecks, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: EnrolmentAPI.Submit.self, context: context)
            let der = try await enrolment.submit(
                token: try RenewalRoutes.token(request), profile: body.profile, csr: Array(body.csr),
                attestation: body.attestation.map(Array.init), attestationIssuer: body.attestationIssuer.map(Array.init)
            )
            return RenewalAPI.Issued(certificate: Data(der))
        }
        api.post("enrolments/completion") { request, context -> HTTPResponse.Status in
            try await limiter.check(.codeChecks, "addr:\(context.peerAddress)")
            let body = try await request.decode(as: EnrolmentAPI.Complete.self, context: context)
            _ = try await enrolment.complete(token: try RenewalRoutes.token(request), signature: Array(body.signature))
            return .noContent
        }
    }
}
