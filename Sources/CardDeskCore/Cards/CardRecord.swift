/// A card the Registration Authority issued, as the server knows it.
public struct CardRecord: Hashable, Sendable {
    public enum Status: String, Hashable, Sendable {
        case active
        case cancelled
    }

    public let serial: String
    public let userID: UserID
    public var status: Status
    /// The key type the card generates (`rsa2048` or `p256`).
    public let keyAlgorithm: String
    /// The card's management key and PUK, sealed under the master key. Never sent to a workstation.
    public let managementKeySealed: [UInt8]
    public let pukSealed: [UInt8]
    public let createdAt: Timestamp

    public init(
        serial: String, userID: UserID, status: Status = .active, keyAlgorithm: String,
        managementKeySealed: [UInt8], pukSealed: [UInt8], createdAt: Timestamp
    ) {
        self.serial = serial
        self.userID = userID
        self.status = status
        self.keyAlgorithm = keyAlgorithm
        self.managementKeySealed = managementKeySealed
        self.pukSealed = pukSealed
        self.createdAt = createdAt
    }
}

/// A renewal as stored: the engine's state (JSON) plus what the store needs to find and guard it.
public struct RenewalRecord: Hashable, Sendable {
    public enum Status: String, Hashable, Sendable {
        case active
        case done
        /// Stopped by the server: a certificate of the card was revoked while it ran.
        case cancelled
    }

    public let id: String
    public let cardSerial: String
    public let userID: UserID
    public var status: Status
    /// The engine's state machine, encoded by the RegistrationAuthority module.
    public var state: String
    /// SHA-256 (hex) of the bearer token the agent uses for this renewal; the token itself is never stored.
    public var tokenHash: String
    public var tokenExpiresAt: Timestamp
    /// Incremented on every save; a save with a stale version is refused (two agents on one card).
    public var version: Int64
    public let createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(
        id: String, cardSerial: String, userID: UserID, status: Status, state: String, tokenHash: String,
        tokenExpiresAt: Timestamp, version: Int64, createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.cardSerial = cardSerial
        self.userID = userID
        self.status = status
        self.state = state
        self.tokenHash = tokenHash
        self.tokenExpiresAt = tokenExpiresAt
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
