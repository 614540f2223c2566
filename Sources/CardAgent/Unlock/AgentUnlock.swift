import CardDeskCore

/// The agent's part of a self-service unlock from the page: which card, which unlock request, and the token once the
/// code was right. A value inside `AgentState`. Each step is claimed before it runs, so the same step cannot run
/// twice at once (two resets would both use the released PUK).
struct AgentUnlock: Sendable {
    enum Step: Hashable, Sendable {
        case none
        case requestingCode
        case awaitingCode(unlockID: String)
        case verifying(unlockID: String)
        case verified(unlockID: String, token: String)
        case resetting(unlockID: String, token: String)
    }

    private(set) var card: CardInsertion?
    private(set) var step: Step = .none

    /// The page asked for the unlock options of `card`: a new unlock begins.
    mutating func began(_ card: CardInsertion) {
        guard !isBusy else { return }
        self.card = card
        step = .none
    }

    private var isBusy: Bool {
        switch step {
        case .requestingCode, .verifying, .resetting: true
        default: false
        }
    }

    private func refuseIfBusy() throws(CardDeskError) {
        if isBusy { throw CardDeskError(.stepInProgress, "The unlock is already busy with your last request: wait for it to finish.") }
    }

    mutating func claimCode(_ card: CardInsertion) throws(CardDeskError) {
        try refuseIfBusy()
        self.card = card
        step = .requestingCode
    }

    /// The server sent a code for unlock request `unlockID` (nil: it sent none).
    mutating func codeSent(_ unlockID: String?, for card: CardInsertion) {
        guard self.card == card, step == .requestingCode else { return }
        step = unlockID.map { .awaitingCode(unlockID: $0) } ?? .none
    }

    mutating func claimVerification(_ card: CardInsertion) throws(CardDeskError) -> String {
        try refuseIfBusy()
        guard self.card == card, case .awaitingCode(let id) = step else { throw CardDeskError(.invalidInput, "Ask for a code first.") }
        step = .verifying(unlockID: id)
        return id
    }

    /// The code was right (`token`) or not (nil: the holder may type it again).
    mutating func verified(token: String?, for card: CardInsertion) {
        guard self.card == card, case .verifying(let id) = step else { return }
        step = token.map { .verified(unlockID: id, token: $0) } ?? .awaitingCode(unlockID: id)
    }

    mutating func claimReset(_ card: CardInsertion) throws(CardDeskError) -> (unlockID: String, token: String) {
        try refuseIfBusy()
        guard self.card == card, case .verified(let id, let token) = step else {
            throw CardDeskError(.invalidInput, "Enter the code you were sent first.")
        }
        step = .resetting(unlockID: id, token: token)
        return (id, token)
    }

    /// The reset ended: done, or stopped (run again, it finishes: the same request and token still hold).
    mutating func resetEnded(unlocked: Bool) {
        guard case .resetting(let id, let token) = step else { return }
        if unlocked {
            self = AgentUnlock()
        } else {
            step = .verified(unlockID: id, token: token)
        }
    }
}
