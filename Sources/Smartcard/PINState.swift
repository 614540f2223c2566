/// What a card says about its PIN (the user's passcode) and PUK, without any secret.
public struct PINState: Hashable, Sendable, Codable {
    public let pinTriesLeft: Int
    public let pinMaximumTries: Int
    public let pukTriesLeft: Int
    /// Whether the PIN has been verified in this session (this card connection).
    public let pinVerified: Bool

    public init(pinTriesLeft: Int, pinMaximumTries: Int, pukTriesLeft: Int, pinVerified: Bool) {
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
}
