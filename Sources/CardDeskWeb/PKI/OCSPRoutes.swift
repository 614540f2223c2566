import CertificateAuthority
import Foundation
import Hummingbird
import RegistrationAuthority

/// The OCSP responder (RFC 6960 appendix A): `POST /ocsp` with a DER request body, or
/// `GET /ocsp/{base64 of the DER request, URL-encoded}`. The answer is always a DER OCSPResponse.
struct OCSPRoutes {
    let responder: OCSPResponder
    let limiter: RateLimiter
    /// RFC 6960 requests are small; anything larger is refused before parsing.
    static let maximumRequestSize = 8 * 1024

    func register(on router: Router<WebContext>) {
        router.post("/ocsp") { request, context in
            try await limiter.check(.ocsp, "addr:\(context.peerAddress)")
            let body = try await request.body.collect(upTo: Self.maximumRequestSize)
            return try await respond(Array(buffer: body), context: context)
        }
        router.get("/ocsp/**") { request, context in
            try await limiter.check(.ocsp, "addr:\(context.peerAddress)")
            // The base64 may contain "/", so take the raw path rather than the split catch-all.
            let path = request.uri.path
            let encoded = path.dropFirst("/ocsp/".count)
            guard let base64 = String(encoded).removingPercentEncoding, let der = Data(base64Encoded: base64) else {
                return try await respond([], context: context)
            }
            return try await respond(Array(der), context: context)
        }
    }

    /// A DER OCSPResponse; 503 (with the reason) only when the HSM is away and no responder is valid.
    private func respond(_ der: [UInt8], context: WebContext) async throws -> Response {
        let answer = try await responder.respond(to: der, logger: context.logger)
        return Response(
            status: .ok,
            headers: [.contentType: "application/ocsp-response"],
            body: .init(byteBuffer: ByteBuffer(bytes: answer))
        )
    }
}
