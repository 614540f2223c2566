import CardDeskAPI
import CardDeskCore

/// The agent's part of a renewal started from the page: whether one is claimed or running, for which card
/// insertion, and its progress as the page polls it. A value inside `AgentState`; the renewal itself
/// (`RenewalClient`) runs in a task that reports each step back.
struct AgentRenewal: Sendable {
    /// For the card in the reader (`AgentState.card`): the state ends the run when that card leaves.
    enum Run: Hashable, Sendable {
        case idle
        /// Claimed; the card is checking the passcode.
        case checkingPasscode
        case running
        /// The card left while it ran: it stops at its next step, and says why.
        case stopping
    }

    private(set) var run: Run = .idle
    private var state: BridgeAPI.RenewalProgress.State = .idle
    private var items: [(profile: CertificateProfileKind, stage: RenewalClient.Stage)] = []
    private var failure: (message: String, code: String?)?

    /// One renewal at a time: a second request while one is claimed or running is refused.
    mutating func claim(profiles: [CertificateProfileKind]) throws(CardDeskError) {
        guard run == .idle else { throw CardDeskError(.renewalConflict, "A renewal is already running.") }
        run = .checkingPasscode
        state = .running
        items = profiles.map { ($0, .pending) }
        failure = nil
    }

    /// Claimed but not started (the passcode was refused, the card left): back to idle.
    mutating func abandon() {
        self = AgentRenewal()
    }

    mutating func started() {
        run = .running
    }

    /// The card left. True when a running renewal must be cancelled.
    mutating func cardRemoved() -> Bool {
        guard run == .running else { return false }
        run = .stopping
        return true
    }

    mutating func update(_ profile: CertificateProfileKind, _ stage: RenewalClient.Stage) {
        guard state == .running else { return }
        if let index = items.firstIndex(where: { $0.profile == profile }) {
            items[index].stage = stage
        } else {
            items.append((profile, stage))
        }
    }

    /// The renewal task ended with `error` (nil: renewed). Returns the reason it stopped, if it did: a renewal
    /// stopped because the card left says so, whatever error the interruption surfaced as.
    mutating func finish(_ error: (any Error)?) -> (any Error)? {
        var reason = error
        if run == .stopping {
            reason = CardDeskError(.cardRemoved, "The smartcard was removed: the renewal stopped. Insert it and renew again to finish.")
        }
        run = .idle
        if let reason {
            state = .failed
            failure = (WorkstationAgent.describe(reason), (reason as? CardDeskError)?.code.name)
        } else {
            state = .succeeded
            for index in items.indices { items[index].stage = .done }
        }
        return reason
    }

    var snapshot: BridgeAPI.RenewalProgress {
        BridgeAPI.RenewalProgress(
            state: state,
            items: items.map { .init(profile: $0.profile, stage: $0.stage.rawValue, step: RenewalClient.Stage.allCases.firstIndex(of: $0.stage) ?? 0) },
            message: failure?.message, errorCode: failure?.code
        )
    }
}
