public import Hummingbird
public import NIOCore

/// The request context of every CardDesk route: Hummingbird's core plus the peer's address (the agent presence
/// check compares the page's address with the address the agent checked in from).
public struct WebContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Every body CardDesk takes is small (the largest is a CSR of a few kilobytes): refuse more with 413 before
    /// reading it.
    public var maxUploadSize: Int { 16 * 1024 }

    /// The peer's IP address as text ("127.0.0.1"), or "unknown".
    var peerAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
