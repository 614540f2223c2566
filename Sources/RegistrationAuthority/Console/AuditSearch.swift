public import CardDeskCore
public import CardDeskStore

/// The audit log as an RA Manager searches it: the entries about their organisation's people and cards, with the
/// chain's verification (walked at most once a minute: the log may hold millions of entries).
extension RAConsole {
    /// One page of entries, newest first, and where the next (older) page starts.
    public struct AuditPage: Sendable {
        public let entries: [AuditEntry]
        /// Pass as `before` for the next page; nil on the last.
        public let next: Int64?
        public let chain: AuditChain.Verdict
        public let checkedAt: Timestamp
    }

    /// Searching the audit log is the RA Manager's (governance of the RA).
    public func searchAudit(_ desk: Desk, filter: AuditFilter, before: Int64?, pageSize: Int = 50) async throws -> AuditPage {
        try await requireManager(desk)
        let entries = try await directory.searchAudit(filter, organisation: desk.organisation, before: before, limit: pageSize + 1)
        let (verdict, checkedAt) = try await chainVerdict()
        return AuditPage(
            entries: Array(entries.prefix(pageSize)), next: entries.count > pageSize ? entries[pageSize - 1].sequence : nil,
            chain: verdict, checkedAt: checkedAt
        )
    }

    /// Every entry the filter finds (up to `limit`), for the CSV export.
    public func exportAudit(_ desk: Desk, filter: AuditFilter, limit: Int = 100_000) async throws -> [AuditEntry] {
        try await requireManager(desk)
        return try await directory.searchAudit(filter, organisation: desk.organisation, before: nil, limit: limit)
    }

    private func requireManager(_ desk: Desk) async throws {
        guard desk.role == .manager else {
            throw try await refusal(desk, subject: "audit", refused: "audit search", reason: "Searching the audit log is for RA Managers. Ask your RA Manager.")
        }
    }

    func chainVerdict() async throws -> (AuditChain.Verdict, Timestamp) {
        let now = clock.now()
        if let cached = chainCheck.withLock({ $0 }), now.millisecondsSince1970 - cached.at.millisecondsSince1970 < 60_000 {
            return (cached.verdict, cached.at)
        }
        let verdict = try await directory.verifyAuditChain(anchor: nil)
        chainCheck.withLock { $0 = (verdict, now) }
        return (verdict, now)
    }
}
