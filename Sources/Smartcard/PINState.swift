public import CardDeskCore
/// What a card says about its PIN (the user's passcode) and PUK, without any secret.
public struct PINState: Hashable, Sendable, Codable {
    public let pinTriesLeft: Int
    public let pinMaximumTries: Int
    /// The PUK's tries left, when the card says (YubiKey metadata); nil for a card that does not.
    public let pukTriesLeft: Int?
    /// Whether the PIN has been verified in this session (this card connection).
    public let pinVerified: Bool

    public init(pinTriesLeft: Int, pinMaximumTries: Int, pukTriesLeft: Int?, pinVerified: Bool) {
        self.pinTriesLeft = pinTriesLeft
        self.pinMaximumTries = pinMaximumTries
        self.pukTriesLeft = pukTriesLeft
        self.pinVerified = pinVerified
    }

    /// Three wrong passcodes lock the card: only the PUK (held by the server) can reset it.
    public var isLocked: Bool { pinTriesLeft == 0 }
    /// The PUK is used up too: the card is blocked for good and must be replaced by the Registration Authority.
    public var isBlockedForGood: Bool { pinTriesLeft == 0 && pukTriesLeft == 0 }
}

/// Passcodes as the service defines them: 6 to 8 digits.
public enum Passcode {
    public static func isWellFormed(_ text: String) -> Bool {
        (6...8).contains(text.utf8.count) && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// Checks a new passcode typed twice: 6–8 digits, both the same, and not trivial (one digit repeated, or a
    /// straight run up or down such as 123456 or 876543). Checked on the workstation: the server never sees it.
    public static func checkNew(_ passcode: String, repeated: String) throws(CardDeskError) {
        guard isWellFormed(passcode) else {
            throw CardDeskError(.weakPasscode, "A passcode is 6 to 8 digits (numbers only).")
        }
        guard passcode == repeated else {
            throw CardDeskError(.weakPasscode, "The two passcodes you typed are different. Type the same new passcode twice.")
        }
        let digits = passcode.utf8.map { Int($0) - 0x30 }
        if Set(digits).count == 1 {
            throw CardDeskError(.weakPasscode, "A passcode cannot be one digit repeated. Choose one that is harder to guess.")
        }
        let steps = zip(digits, digits.dropFirst()).map { ($1 - $0 + 10) % 10 }
        if Set(steps) == [1] || Set(steps) == [9] {
            throw CardDeskError(.weakPasscode, "A passcode cannot be a straight run of digits such as 123456. Choose one that is harder to guess.")
        }
    }
}
