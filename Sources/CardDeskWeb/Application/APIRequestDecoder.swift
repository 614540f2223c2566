import CardDeskCore
import Foundation
public import Hummingbird

/// Every JSON body of the API: read by `CompactJSON` where it can (a request's own fields: strings, whole numbers,
/// booleans, base64 data), and otherwise, and for every error, by a `JSONDecoder` set as Hummingbird's default is
/// (ISO 8601 dates): the value is the same either way, and the messages of refused bodies are `JSONDecoder`'s.
public struct APIRequestDecoder: RequestDecoder {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        if let value = try? CompactJSON.decode(T.self, from: buffer.readableBytesView) { return value }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: Data(buffer.readableBytesView))
    }
}
