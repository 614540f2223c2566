import CertificateAuthority
import Foundation
import Hummingbird
import RegistrationAuthority

/// The OCSP responder (RFC 6960 appendix A): `POST /ocsp` with a DER request body, or
/// `GET /ocsp/{base64 of the DER request, URL-encoded}`. The answer is always a DER OCSPResponse. Answers over GET
/// carry RFC 5019 caching headers (ETag, Last-Modified, Expires, max-age up to nextUpdate) unless they answer a
/// nonce or are not successful; a GET whose If-None-Match names the current answer gets 304.
struct OCSPRoutes {
    let responder: OCSPResponder
    let limiter: RateLimiter
    let clock: any WallClock
    /// RFC 6960 requests are small; anything larger is refused before parsing.
    static let maximumRequestSize = 8 * 1024

    func register(on router: Router<WebContext>) {
        router.post("/ocsp") { request, context in
            try await limiter.check(.ocsp, "addr:\(context.peerAddress)")
            let body = try await request.body.collect(upTo: Self.maximumRequestSize)
            return try await respond(Array(buffer: body), context: context, request: nil)
        }
        router.get("/ocsp/**") { request, context in
            try await limiter.check(.ocsp, "addr:\(context.peerAddress)")
            // The base64 may contain "/", so take the raw path rather than the split catch-all.
            let path = request.uri.path
            let encoded = path.dropFirst("/ocsp/".count)
            guard let base64 = Self.percentDecoded(encoded), let der = Data(base64Encoded: base64) else {
                return try await respond([], context: context, request: request)
            }
            return try await respond(Array(der), context: context, request: request)
        }
    }

    /// The path segment with its %XX escapes decoded (base64's "+", "/" and "=" arrive escaped); nil when an escape is
    /// malformed or the result is not UTF-8. (Foundation's `removingPercentEncoding` did the same at several times the cost.)
    static func percentDecoded(_ text: Substring) -> String? {
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        let utf8 = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "%") {
                guard index + 2 < utf8.count, let high = value(utf8[index + 1]), let low = value(utf8[index + 2]) else { return nil }
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(utf8[index])
                index += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// A DER OCSPResponse; 503 (with the reason) only when the HSM is away and no responder is valid.
    /// `request` is the GET request (cacheable answers); nil for POST.
    private func respond(_ der: [UInt8], context: WebContext, request: Request?) async throws -> Response {
        let answer = try await responder.answer(to: der, logger: context.logger)
        guard let request, let times = answer.cacheable else {
            return Response(
                status: .ok,
                headers: [.contentType: "application/ocsp-response", .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(bytes: answer.der))
            )
        }
        let caching = HTTPCaching.headers(for: answer.der, thisUpdate: times.thisUpdate, nextUpdate: times.nextUpdate, now: clock.now(), maxAge: Int64.max)
        return HTTPCaching.response(request, body: answer.der, contentType: "application/ocsp-response", caching: caching)
    }
}
