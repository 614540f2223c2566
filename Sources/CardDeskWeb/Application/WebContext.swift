public import Hummingbird
public import NIOCore

/// The request context of every CardDesk route: Hummingbird's core plus the peer's address (the agent presence
/// check compares the page's address with the address the agent checked in from).
public struct WebContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The client's address as a trusted proxy (a load balancer) forwarded it (`ForwardedClientMiddleware`).
    var forwardedFor: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Every body CardDesk takes is small (the largest is a CSR of a few kilobytes): refuse more with 413 before
    /// reading it.
    public var maxUploadSize: Int { 16 * 1024 }

    /// JSON answers without Foundation's encoder for what CardDesk sends (see `CompactJSON`).
    public var responseEncoder: APIResponseEncoder { APIResponseEncoder() }

    /// JSON bodies without Foundation's decoder where they allow it (see `APIRequestDecoder`).
    public var requestDecoder: APIRequestDecoder { APIRequestDecoder() }

    /// The client's IP address as text ("127.0.0.1"): the TCP peer's, or the one a trusted proxy forwarded; or
    /// "unknown". Rate limits and the agent presence check count by it.
    var peerAddress: String { forwardedFor ?? remoteAddress?.ipAddress ?? "unknown" }
}
