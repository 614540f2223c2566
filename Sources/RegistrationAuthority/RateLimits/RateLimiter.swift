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
        /// How many requests an instance may count in memory before it adds them to the store (1: every request is
        /// written). For high-rate endpoints (OCSP) a batch keeps the store write off most requests; instances then
        /// see each other's counts at least once a second, so together they may pass the limit by a batch each.
        public let batch: Int64

        public init(name: String, perWindow: Int64, batch: Int64 = 1) {
            self.name = name
            self.perWindow = perWindow
            self.batch = batch
        }

        public static let challenges = Limit(name: "challenges", perWindow: 120)
        public static let signIn = Limit(name: "signin", perWindow: 60)
        public static let signInPerCard = Limit(name: "signin-card", perWindow: 12)
        public static let renewalPerCard = Limit(name: "renewal-card", perWindow: 20)
        public static let unlock = Limit(name: "unlock", perWindow: 20)
        public static let unlockPerCard = Limit(name: "unlock-card", perWindow: 10)
        public static let codeChecks = Limit(name: "code-check", perWindow: 30)
        public static let handovers = Limit(name: "handover", perWindow: 30)
        public static let ocsp = Limit(name: "ocsp", perWindow: 6_000, batch: 50)
    }

    /// The length of a window, in seconds.
    public static let windowSeconds: Int64 = 60

    let store: any RateLimitStore
    let clock: any WallClock
    /// Multiplies every limit (a deployment behind a NAT that gathers many workstations raises it); 0 turns limits off.
    public let scale: Double
    /// Counts of batched limits not yet in the store (shared by copies of this limiter).
    let pending = PendingCounts()

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
        let count: Int64
        if limit.batch > 1 {
            let (estimate, flush) = await pending.add(bucket: bucket, window: windowStart.millisecondsSince1970, now: now, batch: limit.batch)
            if flush > 0 {
                let total = try await store.countRequests(bucket: bucket, windowStart: windowStart, count: flush)
                await pending.settle(bucket: bucket, window: windowStart.millisecondsSince1970, total: total)
            }
            count = estimate
        } else {
            count = try await store.countRequests(bucket: bucket, windowStart: windowStart, count: 1)
        }
        let allowed = max(1, Int64((Double(limit.perWindow) * scale).rounded()))
        guard count > allowed else { return }
        let retryAfter = Int((windowStart.millisecondsSince1970 + windowMilliseconds - now + 999) / 1000)
        // A batched limit's first refusal in a window puts its counts in the store first, so the window's row exists
        // for the audit mark; later refusals stay in memory.
        if limit.batch > 1, let flush = await pending.firstRefusal(bucket: bucket, window: windowStart.millisecondsSince1970), flush > 0 {
            _ = try await store.countRequests(bucket: bucket, windowStart: windowStart, count: flush)
        }
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

/// The in-memory side of batched limits: per bucket, the total the store last answered and what this instance
/// counted since. The estimate (`known + pending`) is exact for one instance and at most a batch per other instance
/// behind for several.
actor PendingCounts {
    private struct Entry {
        var window: Int64
        var known: Int64 = 0
        var pending: Int64 = 0
        var flushedAt: Int64
        var refused = false
    }

    private var entries: [String: Entry] = [:]

    /// Counts one request; answers the estimate, and how many counts the caller must now add to the store (0: none).
    func add(bucket: String, window: Int64, now: Int64, batch: Int64) -> (estimate: Int64, flush: Int64) {
        var entry = entries[bucket].flatMap { $0.window == window ? $0 : nil } ?? Entry(window: window, flushedAt: now)
        entry.pending += 1
        let estimate = entry.known + entry.pending
        var flush: Int64 = 0
        if entry.pending >= batch || now - entry.flushedAt >= 1000 {
            flush = entry.pending
            entry.known += entry.pending
            entry.pending = 0
            entry.flushedAt = now
        }
        if entries.count > 10_000 { entries = entries.filter { $0.value.window >= window } }
        entries[bucket] = entry
        return (estimate, flush)
    }

    /// For the first refusal of a window: the counts not yet in the store (taken out of `pending`); nil afterwards.
    func firstRefusal(bucket: String, window: Int64) -> Int64? {
        guard var entry = entries[bucket], entry.window == window, !entry.refused else { return nil }
        let flush = entry.pending
        entry.known += entry.pending
        entry.pending = 0
        entry.refused = true
        entries[bucket] = entry
        return flush
    }

    /// The store's total after a flush (it includes other instances' counts).
    func settle(bucket: String, window: Int64, total: Int64) {
        guard var entry = entries[bucket], entry.window == window else { return }
        entry.known = max(entry.known, total)
        entries[bucket] = entry
    }
}
