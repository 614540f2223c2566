import CardDeskCore
import CertificateAuthority
import CardDeskStore
import Foundation
import Synchronization

/// Which workstations have a running agent: the agent checks in every few seconds from its address, and a page that
/// cannot reach the agent asks whether one checked in from the page's address. A browser that blocks local network
/// access fails exactly like a missing agent; this tells the two apart. A hint, not a record: kept in the store (not
/// durably), so that every instance behind a load balancer knows of an agent that checked in with any of them.
final class AgentPresence: Sendable {
    let store: any AgentPresenceStore
    let clock: any WallClock
    /// How long a check-in counts.
    let freshness: Int64
    /// What this instance wrote last per address: a check-in that changes nothing and comes soon after is not
    /// written again (an agent checks in every 5 s; the store needs to hear of it far less often).
    private let written = Mutex<[String: (port: Int, at: Timestamp)]>([:])

    init(store: any AgentPresenceStore, clock: any WallClock, freshness: Int64 = 20) {
        self.store = store
        self.clock = clock
        self.freshness = freshness
    }

    func checkIn(address: String, bridgePort: Int) async throws {
        let now = clock.now()
        let due = written.withLock { written in
            if let last = written[address], last.port == bridgePort, now < last.at.adding(seconds: freshness / 4) { return false }
            if written.count > 10_000 { written = written.filter { now < $0.value.at.adding(seconds: freshness) } }
            written[address] = (bridgePort, now)
            return true
        }
        if due { try await store.recordAgentCheckIn(address: address, bridgePort: bridgePort, at: now) }
    }

    /// The bridge port of an agent that checked in from `address` recently, with any instance.
    func seen(address: String) async throws -> Int? {
        try await store.agentBridgePort(address: address, since: clock.now().adding(seconds: -freshness))
    }
}
