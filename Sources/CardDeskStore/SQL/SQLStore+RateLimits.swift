public import CardDeskCore
import SQLKit

extension SQLStore: RateLimitStore, MaintenanceStore {
    public func countRequests(bucket: String, windowStart: Timestamp, count: Int64) async throws -> Int64 {
        // One statement counts, so concurrent requests (on any instance) never both see the same count. Not durable:
        // losing the last few counts in a crash only forgives a few requests.
        try await host.transaction(durable: false) { db in
            let window = windowStart.millisecondsSince1970
            guard let row = try await db.raw("""
                INSERT INTO rate_limits (bucket, window_start, hits, refusal_audited) VALUES (\(bind: bucket), \(bind: window), \(bind: count), 0)
                ON CONFLICT (bucket) DO UPDATE SET
                    hits = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.hits + excluded.hits ELSE excluded.hits END,
                    refusal_audited = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.refusal_audited ELSE 0 END,
                    window_start = excluded.window_start
                RETURNING hits
                """).first() else { return count }
            return try row.decode(column: "hits", as: Int64.self)
        }
    }

    public func auditRefusalOnce(bucket: String, windowStart: Timestamp, audit: AuditEvent) async throws -> Bool {
        try await host.transaction { db in
            let first = try await db.raw("""
                UPDATE rate_limits SET refusal_audited = 1
                WHERE bucket = \(bind: bucket) AND window_start = \(bind: windowStart.millisecondsSince1970) AND refusal_audited = 0
                RETURNING bucket
                """).first() != nil
            if first { _ = try await self.appendAudit(audit, on: db) }
            return first
        }
    }

    public func purgeExpired(now: Timestamp) async throws -> Int {
        try await host.transaction(durable: false) { db in
            let challenges = try await db.raw("DELETE FROM challenges WHERE expires_at < \(bind: now.millisecondsSince1970) RETURNING nonce").all().count
            // A window older than a day is of no use to any limit.
            let limits = try await db.raw("DELETE FROM rate_limits WHERE window_start < \(bind: now.millisecondsSince1970 - 86_400_000) RETURNING bucket").all().count
            // An agent not seen for an hour is gone.
            let agents = try await db.raw("DELETE FROM agent_presence WHERE seen_at < \(bind: now.millisecondsSince1970 - 3_600_000) RETURNING address").all().count
            return challenges + limits + agents
        }
    }
}

extension SQLStore: AgentPresenceStore {
    public func recordAgentCheckIn(address: String, bridgePort: Int, at time: Timestamp) async throws {
        try await host.transaction(durable: false) { db in
            try await db.raw("""
                INSERT INTO agent_presence (address, bridge_port, seen_at) VALUES (\(bind: address), \(bind: bridgePort), \(bind: time.millisecondsSince1970))
                ON CONFLICT (address) DO UPDATE SET bridge_port = excluded.bridge_port, seen_at = excluded.seen_at
                """).run()
        }
    }

    public func agentBridgePort(address: String, since: Timestamp) async throws -> Int? {
        try await host.read { db in
            try await db.raw("""
                SELECT bridge_port FROM agent_presence WHERE address = \(bind: address) AND seen_at >= \(bind: since.millisecondsSince1970)
                """).first()?.decode(column: "bridge_port", as: Int.self)
        }
    }
}
