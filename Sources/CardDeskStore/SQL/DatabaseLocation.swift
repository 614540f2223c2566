public import CardDeskCore

/// Where the store lives: an SQLite file (the embedded default) or a PostgreSQL server.
public enum DatabaseLocation: Hashable, Sendable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// Parses `--database-url`: `postgres://…` / `postgresql://…`, or `sqlite:PATH` / `sqlite://PATH`.
    public init(url: String) throws(CardDeskError) {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            self = .postgres(url: url)
        } else if url.hasPrefix("sqlite://") {
            self = .sqlite(path: String(url.dropFirst("sqlite://".count)))
        } else if url.hasPrefix("sqlite:") {
            self = .sqlite(path: String(url.dropFirst("sqlite:".count)))
        } else {
            throw CardDeskError(.configuration, "The database URL must start with postgres:// or sqlite: (got \"\(Self.redacted(url))\").")
        }
        if case .sqlite(let path) = self, path.isEmpty {
            throw CardDeskError(.configuration, "The SQLite database URL names no file: use sqlite:/path/to/carddesk.sqlite.")
        }
    }

    /// The location without any password, for logs and messages.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let url): Self.redacted(url)
        }
    }

    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://"), let at = url[schemeEnd.upperBound...].lastIndex(of: "@") else { return url }
        let credentials = url[schemeEnd.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}
