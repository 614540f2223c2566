public import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Text messages through an HTTP gateway: `POST <gateway>` with `{"to": "+447700900123", "text": "…"}` and, when
/// configured, `Authorization: Bearer <token>`. Any 2xx answer counts as accepted.
public struct HTTPTextSender: MessageSender {
    public let gateway: URL
    let token: String?
    let session: URLSession

    public init(gateway: URL, token: String?) {
        self.gateway = gateway
        self.token = token
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        self.session = URLSession(configuration: configuration)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    public func send(to recipient: String, subject: String, body: String) async throws {
        var request = URLRequest(url: gateway)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpBody = try JSONSerialization.data(withJSONObject: ["to": recipient, "text": body])
        let (_, response) = try await session.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else { throw Failure(description: "the text message gateway answered HTTP \(status)") }
    }
}
