/// Test hook: a named place where a test may ask the process to die at once, as a power cut or `kill -9` would.
///
/// A crash point is armed by an environment variable that names the point, `before` or `after`, and which
/// occurrence: for example `CARDDESK_TEST_KILL_AGENT=installCertificate:after:1`. Production never sets these.
public struct CrashPoint: Sendable {
    public let name: String
    public let after: Bool
    public let occurrence: Int

    public init?(environmentValue value: String?) {
        guard let parts = value?.split(separator: ":").map(String.init), parts.count >= 2 else { return nil }
        self.name = parts[0]
        self.after = parts[1] == "after"
        self.occurrence = parts.count > 2 ? Int(parts[2]) ?? 1 : 1
    }

    /// Whether the `count`-th pass through `name` (before or after) is this point.
    public func matches(_ name: String, after: Bool, count: Int) -> Bool {
        name == self.name && after == self.after && count == occurrence
    }
}
