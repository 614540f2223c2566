public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority

/// Limits on how often one client address, or one card, may use an endpoint that an attacker could hammer
/// (sign-in, challenges, unlock, OCSP). Counted in the store in fixed one-minute windows, so several server
/// instances share the limits; a refusal is `tooManyRequests` (HTTP 429 with `Retry-After`), audited once per
/// window and bucket, not once per request.
public struct RateLimiter: Sendable {
    /// One limit: how many requests per window, under a name that becomes part of the bucket.
    public struct Limit: Hashable, Sendable {
        public let name: String
        public let perWindow: Int64

        public init(name: String, perWindow: Int64) {
            self.name = name
            self.perWindow = perWindow
        }

        public static let challenges = Limit(name: "challenges", perWindow: 120)
        public static let signIn = Limit(name: "signin", perWindow: 60)
        public static let signInPerCard = Limit(name: "signin-card", perWindow: 12)
        public static let renewalPerCard = Limit(name: "renewal-card", perWindow: 20)
        public static let unlock = Limit(name: "unlock", perWindow: 20)
        public static let unlockPerCard = Limit(name: "unlock-card", perWindow: 10)
        public static let codeChecks = Limit(name: "code-check", perWindow: 30)
        public static let handovers = Limit(name: "handover", perWindow: 30)
        public static let ocsp = Limit(name: "ocsp", perWindow: 6_000)
    }

    /// The length of a window, in seconds.
    public static let windowSeconds: Int64 = 60

    let store: any RateLimitStore
    let clock: any WallClock
    /// Multiplies every limit (a deployment behind a NAT that gathers many workstations raises it); 0 turns limits off.
    public let scale: Double

    public init(store: any RateLimitStore, clock: any WallClock, scale: Double = 1) {
        self.store = store
        self.clock = clock
        self.scale = scale
    }

    /// Counts one request for `key` (`addr:<ip>` or `card:<serial>`) under `limit`; throws `tooManyRequests` once
    /// the window's allowance is spent.
    public func check(_ limit: Limit, _ key: String) async throws {
        guard scale > 0 else { return }
        let now = clock.now().millisecondsSince1970
        let windowMilliseconds = Self.windowSeconds * 1000
        let windowStart = Timestamp(millisecondsSince1970: now - now % windowMilliseconds)
        let bucket = "\(limit.name):\(String(key.prefix(80)))"
        let count = try await store.countRequest(bucket: bucket, windowStart: windowStart)
        let allowed = max(1, Int64((Double(limit.perWindow) * scale).rounded()))
        guard count > allowed else { return }
        let retryAfter = Int((windowStart.millisecondsSince1970 + windowMilliseconds - now + 999) / 1000)
        _ = try? await store.auditRefusalOnce(bucket: bucket, windowStart: windowStart, audit: AuditEvent(
            action: .rateLimit, actor: key, subject: limit.name, outcome: .failure,
            details: "more than \(allowed) requests in \(Self.windowSeconds) s; refused until the window ends", time: clock.now()
        ))
        throw CardDeskError(
            .tooManyRequests,
            "Too many requests from this workstation or for this card in a short time. Wait \(retryAfter) seconds and try again.",
            retryAfterSeconds: retryAfter
        )
    }
}
