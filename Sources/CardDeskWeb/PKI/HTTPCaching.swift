import CardDeskCore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// HTTP caching for what the CA publishes (RFC 5019 §6 for OCSP over GET, and the same for CRLs): a strong ETag from
/// the bytes, Last-Modified (thisUpdate), Expires (nextUpdate) and a max-age that never reaches past nextUpdate, so
/// that caches and CDNs can answer most requests; a request whose If-None-Match names the current ETag gets 304.
enum HTTPCaching {
    /// The headers for `body`, published at `thisUpdate` and valid until `nextUpdate`, cached for at most `maxAge`.
    static func headers(for body: [UInt8], thisUpdate: Timestamp, nextUpdate: Timestamp, now: Timestamp, maxAge: Int64) -> HTTPFields {
        let remaining = max(0, (nextUpdate.millisecondsSince1970 - now.millisecondsSince1970) / 1000)
        var fields = HTTPFields()
        fields[.eTag] = etag(body)
        fields[.lastModified] = HTTPDate.string(thisUpdate)
        fields[.expires] = HTTPDate.string(nextUpdate)
        fields[.cacheControl] = "max-age=\(min(maxAge, remaining)), public, no-transform, must-revalidate"
        return fields
    }

    static func etag(_ body: [UInt8]) -> String {
        "\"" + Hex.string(SHA256.hash(data: body).prefix(16), lowercase: true) + "\""
    }

    /// Whether the request already holds this version (If-None-Match lists its ETag, or `*`).
    static func notModified(_ request: Request, etag: String) -> Bool {
        guard let given = request.headers[.ifNoneMatch] else { return false }
        return given.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == etag || tag == "W/" + etag
        }
    }

    /// The response: 304 without a body when the client has it, else 200 with `body`; the caching headers either way.
    static func response(_ request: Request, body: [UInt8], contentType: String, caching: HTTPFields) -> Response {
        var headers = caching
        headers[.contentType] = contentType
        if let etag = caching[.eTag], notModified(request, etag: etag) {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
