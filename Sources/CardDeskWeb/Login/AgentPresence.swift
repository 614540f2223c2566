import Foundation

/// Which workstations have a running agent: the agent checks in every few seconds from its address, and a page that
/// cannot reach the agent asks whether one checked in from the page's address. A browser that blocks local network
/// access fails exactly like a missing agent; this tells the two apart. Kept in memory: it is a hint, not a record.
actor AgentPresence {
    private struct Entry {
        let bridgePort: Int
        let at: Date
    }

    private var entries: [String: Entry] = [:]
    /// How long a check-in counts.
    let freshness: TimeInterval

    init(freshness: TimeInterval = 20) {
        self.freshness = freshness
    }

    func checkIn(address: String, bridgePort: Int) {
        let now = Date()
        entries[address] = Entry(bridgePort: bridgePort, at: now)
        if entries.count > 10_000 { entries = entries.filter { now.timeIntervalSince($0.value.at) < freshness } }
    }

    /// The bridge port of an agent that checked in from `address` recently.
    func seen(address: String) -> Int? {
        guard let entry = entries[address], Date().timeIntervalSince(entry.at) < freshness else { return nil }
        return entry.bridgePort
    }
}
