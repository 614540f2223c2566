/// A card the Registration Authority issued, as the server knows it.
public struct CardRecord: Hashable, Sendable {
    public enum Status: String, Hashable, Sendable {
        case active
        case cancelled
        /// Being enrolled at a workstation (`carddesk card enrol`): not usable until the enrolment completes.
        case enrolling
    }

    public let serial: String
    public let userID: UserID
    public var status: Status
    /// The key type the card generates (`rsa2048` or `p256`).
    public let keyAlgorithm: String
    /// The card's PIV management key (algorithm byte, then the key), sealed under the master key. It never leaves
    /// the server: the server answers the card's witness, the agent only relays it.
    public let managementKeySealed: [UInt8]
    /// The card's PUK, sealed. Released to the agent for one self-service unlock, after which the card's PUK is
    /// changed to `pukNextSealed`.
    public let pukSealed: [UInt8]
    /// The PUK the card gets after a released PUK is used (nil when no PUK is out).
    public var pukNextSealed: [UInt8]?
    /// When the PUK was released and not yet rotated: the card's record shows it until the card is next in contact.
    public var pukReleasedAt: Timestamp?
    public let createdAt: Timestamp

    public init(
        serial: String, userID: UserID, status: Status = .active, keyAlgorithm: String,
        managementKeySealed: [UInt8], pukSealed: [UInt8], pukNextSealed: [UInt8]? = nil, pukReleasedAt: Timestamp? = nil, createdAt: Timestamp
    ) {
        self.serial = serial
        self.userID = userID
        self.status = status
        self.keyAlgorithm = keyAlgorithm
        self.managementKeySealed = managementKeySealed
        self.pukSealed = pukSealed
        self.pukNextSealed = pukNextSealed
        self.pukReleasedAt = pukReleasedAt
        self.createdAt = createdAt
    }

    /// A PUK was released for an unlock and the card has not yet been given its new one.
    public var pukRotationPending: Bool { pukNextSealed != nil }
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
    /// The RA who renewed the card for its holder (`user:ID`), at their desk; nil for a self-renewal. A renewal by
    /// an RA starts the self-renewal count again.
    public var performedBy: String?

    public init(
        id: String, cardSerial: String, userID: UserID, status: Status, state: String, tokenHash: String,
        tokenExpiresAt: Timestamp, version: Int64, createdAt: Timestamp, updatedAt: Timestamp, performedBy: String? = nil
    ) {
        self.performedBy = performedBy
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

/// A card enrolment: an RA's single-use token (stored as a hash) with which a workstation enrols one blank PIV card
/// for one user, within an hour.
public struct EnrolmentRecord: Hashable, Sendable {
    public enum Status: String, Hashable, Sendable {
        case open
        case done
        /// The token expired with the card not enrolled: its certificates are revoked and the card cancelled.
        case expired
    }

    public let id: String
    public let tokenHash: String
    public let userID: UserID
    public let keyAlgorithm: String
    public let validityDays: Int?
    /// The card being enrolled, once the workstation has started.
    public var cardSerial: String?
    public var status: Status
    public let createdAt: Timestamp
    public let expiresAt: Timestamp

    public init(
        id: String, tokenHash: String, userID: UserID, keyAlgorithm: String, validityDays: Int?, cardSerial: String?, status: Status,
        createdAt: Timestamp, expiresAt: Timestamp
    ) {
        self.id = id
        self.tokenHash = tokenHash
        self.userID = userID
        self.keyAlgorithm = keyAlgorithm
        self.validityDays = validityDays
        self.cardSerial = cardSerial
        self.status = status
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}
