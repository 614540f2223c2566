public import Logging

/// swift-log's `StreamLogHandler` on standard error (the same lines), with its metadata formatted when a line is
/// written rather than whenever it is set: Hummingbird sets a request id on every request's logger, and
/// `StreamLogHandler` formats the whole metadata at each change, for lines that are mostly never written.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    private var stream: StreamLogHandler

    public init(label: String) {
        self.init(StreamLogHandler.standardError(label: label))
    }

    /// Writes through `stream` (which should have no metadata of its own).
    public init(_ stream: StreamLogHandler) {
        self.stream = stream
    }

    public var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var stream = stream
        stream.metadata = metadata
        stream.log(event: event)
    }
}
