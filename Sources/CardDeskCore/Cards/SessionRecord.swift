/// A signed-in card holder: who, with which card and certificate, in which role, and whether it has ended.
public struct SessionRecord: Hashable, Sendable {
    public let id: String
    /// SHA-256 (hex) of the session token; the token itself is never stored.
    public let tokenHash: String
    public let userID: UserID
    public let cardSerial: String
    /// The authentication certificate the card signed in with.
    public let certificateSerial: SerialNumber
    /// The role chosen for this session (nil until the holder picks one of several).
    public var role: Role?
    public let createdAt: Timestamp
    public var lastSeenAt: Timestamp
    public var endedAt: Timestamp?
    /// Why it ended: `card removed`, `logged out`, `idle timeout`.
    public var endReason: String?
    /// For a browser session: the workstation agent's session it joined (single-use hand-over). It ends with it.
    public let parentID: String?

    public init(
        id: String, tokenHash: String, userID: UserID, cardSerial: String, certificateSerial: SerialNumber, role: Role?,
        createdAt: Timestamp, lastSeenAt: Timestamp, endedAt: Timestamp? = nil, endReason: String? = nil,
        parentID: String? = nil
    ) {
        self.id = id
        self.tokenHash = tokenHash
        self.userID = userID
        self.cardSerial = cardSerial
        self.certificateSerial = certificateSerial
        self.role = role
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.endedAt = endedAt
        self.endReason = endReason
        self.parentID = parentID
    }
}
