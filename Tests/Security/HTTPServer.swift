import CardDeskServerKit
import CardDeskWeb
import Foundation
import Hummingbird
import Logging
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The real HTTP application on a free port of 127.0.0.1, and a plain HTTP client for attacks.
enum HTTPServer {
    struct Answer {
        let status: Int
        let body: String
        let retryAfter: String?
    }

    static func with(_ instance: CardDeskInstance, _ body: (URL) async throws -> Void) async throws {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "security")
        logger.logLevel = .error
        let app = buildApplication(
            services: instance.webServices, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger,
            onServerRunning: { port in continuation.yield(port ?? 0) }
        )
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        do {
            try await body(try #require(URL(string: "http://127.0.0.1:\(port)")))
        } catch {
            task.cancel()
            throw error
        }
        task.cancel()
        _ = try? await task.value
    }

    static func post(_ base: URL, _ path: String, json: [String: String], headers: [String: String] = [:]) async throws -> Answer {
        try await send(base, path, method: "POST", body: try JSONSerialization.data(withJSONObject: json), headers: headers)
    }

    static func send(_ base: URL, _ path: String, method: String, body: Data? = nil, headers: [String: String] = [:]) async throws -> Answer {
        var request = URLRequest(url: try #require(URL(string: base.absoluteString + path)))
        request.httpMethod = method
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        return Answer(status: http.statusCode, body: String(decoding: data, as: UTF8.self), retryAfter: http.value(forHTTPHeaderField: "Retry-After"))
    }
}
