/// A one-time code sent to a card holder: to unlock a card (or reset a forgotten passcode), or to confirm a new
/// contact address. Stored only as a keyed hash; valid 15 minutes; single use; five wrong entries void it.
public struct OneTimeCodeRecord: Hashable, Sendable {
    public enum Purpose: String, Hashable, Sendable {
        case unlock
        case confirmContact
    }

    public let id: String
    public let purpose: Purpose
    public let userID: UserID
    /// The card being unlocked (unlock codes only).
    public let cardSerial: String?
    public let channel: ContactChannel
    /// Where the code went (for a contact confirmation: the address being confirmed).
    public let recipient: String
    /// HMAC-SHA256 (hex) of the code under a key derived from the master key: a stolen database does not give it up.
    public let codeHash: String
    public let createdAt: Timestamp
    public let expiresAt: Timestamp
    public var failedAttempts: Int
    public var usedAt: Timestamp?
    public var voidedAt: Timestamp?
    /// After the code is accepted: the hash of the bearer token that authorises the passcode reset, and its expiry.
    public var tokenHash: String?
    public var tokenExpiresAt: Timestamp?
    public var completedAt: Timestamp?

    public static let lifetimeSeconds: Int64 = 15 * 60
    public static let maximumWrongEntries = 5
    public static let maximumPerHour = 3

    public init(
        id: String, purpose: Purpose, userID: UserID, cardSerial: String?, channel: ContactChannel, recipient: String, codeHash: String,
        createdAt: Timestamp, expiresAt: Timestamp, failedAttempts: Int = 0, usedAt: Timestamp? = nil, voidedAt: Timestamp? = nil,
        tokenHash: String? = nil, tokenExpiresAt: Timestamp? = nil, completedAt: Timestamp? = nil
    ) {
        self.id = id
        self.purpose = purpose
        self.userID = userID
        self.cardSerial = cardSerial
        self.channel = channel
        self.recipient = recipient
        self.codeHash = codeHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.failedAttempts = failedAttempts
        self.usedAt = usedAt
        self.voidedAt = voidedAt
        self.tokenHash = tokenHash
        self.tokenExpiresAt = tokenExpiresAt
        self.completedAt = completedAt
    }
}

/// A message waiting to be sent (email or text). The body is sealed under the master key: it carries a one-time code.
public struct OutboxMessage: Hashable, Sendable {
    public let id: String
    public let channel: ContactChannel
    public let recipient: String
    public let subject: String
    public let bodySealed: [UInt8]
    public let createdAt: Timestamp
    public var attempts: Int
    public var nextAttemptAt: Timestamp
    public var sentAt: Timestamp?
    public var lastError: String?

    public init(
        id: String, channel: ContactChannel, recipient: String, subject: String, bodySealed: [UInt8], createdAt: Timestamp,
        attempts: Int = 0, nextAttemptAt: Timestamp, sentAt: Timestamp? = nil, lastError: String? = nil
    ) {
        self.id = id
        self.channel = channel
        self.recipient = recipient
        self.subject = subject
        self.bodySealed = bodySealed
        self.createdAt = createdAt
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.sentAt = sentAt
        self.lastError = lastError
    }

    /// Seconds to wait after `attempts` failures: 1, 2, 4 … up to 60.
    public static func backoff(afterAttempts attempts: Int) -> Int64 {
        Int64(min(60, 1 << min(attempts, 6)))
    }
}
