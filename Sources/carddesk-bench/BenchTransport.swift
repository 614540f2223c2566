import AsyncHTTPClient
import CardAgent
import Foundation
import NIOCore
import NIOHTTP1

/// The benchmark's HTTP transport: SwiftNIO's AsyncHTTPClient with kept-alive connections. The benchmark stands for
/// thousands of workstations from one process on the server's own cores; URLSession (the agent's transport, through
/// libcurl) cost about as much CPU per renewal as the server itself, and capped the check-in rows near 1,500/s.
struct BenchTransport: ServerTransport {
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        // A kept-alive connection for every operation in flight, up to the peak rows' (`--peak`, default 128), as each
        // workstation has its own: with fewer, requests would wait in this pool and the server would see fewer at once.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    func exchange(method: String, url: URL, headers: [(name: String, value: String)], body: Data?) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        for header in headers { request.headers.add(name: header.name, value: header.value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        do {
            response = try await Self.client.execute(request, timeout: .seconds(60))
        } catch let error as HTTPClientError where error == .connectTimeout {
            throw ServerTransportError.notSent("\(error)")
        } catch let error as ChannelError {
            throw ServerTransportError.notSent("\(error)")
        }
        let buffer = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return (Int(response.status.code), Data(buffer.readableBytesView))
    }
}
