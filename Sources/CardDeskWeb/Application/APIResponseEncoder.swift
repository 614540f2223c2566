public import CardDeskCore
public import Foundation
public import Hummingbird
import HTTPTypes

/// Every JSON answer of the API: written by `CompactJSON`, or (for what it leaves to Foundation) by a `JSONEncoder`
/// set as Hummingbird's default is (ISO 8601 dates); the same headers as Hummingbird's own JSON answers.
public struct APIResponseEncoder: ResponseEncoder {
    public init() {}

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        let bytes: [UInt8]
        do {
            bytes = try CompactJSON.encode(value)
        } catch is CompactJSON.Unsupported {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            bytes = Array(try encoder.encode(value))
        }
        var headers = HTTPFields()
        headers.reserveCapacity(4)
        headers.append(HTTPField(name: .contentType, value: "application/json; charset=utf-8"))
        headers.append(HTTPField(name: .contentLength, value: String(bytes.count)))
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
