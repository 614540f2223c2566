import HTTPTypes
import Hummingbird
import NIOCore

/// Behind a load balancer every request comes from the balancer's address. When the TCP peer is one of the trusted
/// proxies (setting `http.trusted.proxies`), the client's address is the last `X-Forwarded-For` entry, the one that
/// proxy added (haproxy `option forwardfor`); anything before it was written by the client and is ignored. From any
/// other peer the header is ignored altogether, so nobody can choose the address their requests are counted under.
struct ForwardedClientMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let trusted: Set<String>

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        guard !trusted.isEmpty, let peer = context.remoteAddress?.ipAddress, trusted.contains(peer),
              let name = HTTPField.Name("X-Forwarded-For"),
              let last = request.headers[values: name].last?.split(separator: ",").last?.trimmingCharacters(in: .whitespaces),
              (try? SocketAddress(ipAddress: last, port: 0)) != nil else {
            return try await next(request, context)
        }
        var context = context
        context.forwardedFor = last
        return try await next(request, context)
    }
}
