public import CardDeskCore

// The storage seam, cut per consumer as Boulder's storage authority is: each part of CardDesk depends on the few
// methods it uses and nothing else. `SQLStore` implements all of them over SQLite and PostgreSQL.

/// What operators (and later the RA console) need to manage card holders.
public protocol UserDirectory: Sendable {
    /// Adds a user with their roles, and the audit entry, in one transaction.
    /// Throws `.userExists` when the ID is taken; nothing is written then.
    func addUser(_ user: User, audit: AuditEvent) async throws
    func user(id: UserID) async throws -> User?
}

/// The storage the certificate authority needs.
public protocol CertificateAuthorityStorage: Sendable {
    /// The user a certificate is for; the CA builds the subject from this record, never from the CSR.
    func user(id: UserID) async throws -> User?
    /// Stores an issued certificate and its audit entry in one durable transaction: both or neither. With them, in
    /// the same transaction: `answer`, the OCSP answer signed ahead for it, and `step`, the renewal step the issuance
    /// is part of (its version check failing writes nothing at all).
    func recordIssuance(_ certificate: CertificateRecord, audit: AuditEvent, answer: PresignedOCSPAnswer?, step: RenewalStepWrite?) async throws
    /// Marks a certificate revoked and appends the audit entry in one transaction.
    /// Throws `.unknownCertificate` or `.alreadyRevoked`; nothing is written then.
    /// `supersededBy` names the certificate that replaced it in a renewal. Revoking a card's certificate cancels
    /// the card's unfinished renewal (audited) unless `byRenewal` names that renewal as the one revoking it.
    /// The certificate's stored OCSP answer goes in the same transaction; `answer` (signed ahead, saying revoked)
    /// takes its place. `step`: the renewal step the revocation is part of, saved with it.
    func revoke(
        serial: SerialNumber, reason: RevocationReason, at time: Timestamp, supersededBy: SerialNumber?, byRenewal: String?, audit: AuditEvent,
        answer: PresignedOCSPAnswer?, step: RenewalStepWrite?
    ) async throws -> CertificateRecord
    /// One certificate as stored (the CA signs a revocation's answer ahead from it).
    func certificate(serial: SerialNumber) async throws -> CertificateRecord?
    /// Every revoked certificate of one issuing CA, for its CRL.
    func revokedCertificates(profile: CertificateProfileKind) async throws -> [RevokedCertificate]
    /// The next CRL number for one issuing CA: strictly increasing, never reused, across restarts and instances.
    func nextCRLNumber(profile: CertificateProfileKind) async throws -> Int64
}

extension CertificateAuthorityStorage {
    public func recordIssuance(_ certificate: CertificateRecord, audit: AuditEvent) async throws {
        try await recordIssuance(certificate, audit: audit, answer: nil, step: nil)
    }

    public func revoke(
        serial: SerialNumber, reason: RevocationReason, at time: Timestamp, supersededBy: SerialNumber?, byRenewal: String?, audit: AuditEvent
    ) async throws -> CertificateRecord {
        try await revoke(serial: serial, reason: reason, at: time, supersededBy: supersededBy, byRenewal: byRenewal, audit: audit, answer: nil, step: nil)
    }
}

/// A renewal's step, saved in the same transaction as the issuance or revocation it records: both are stored or
/// neither, and the step costs no commit of its own. `renewal` carries the version after the step (see
/// `RenewalStore.saveRenewal`).
public struct RenewalStepWrite: Sendable {
    public let renewal: RenewalRecord
    public let audit: AuditEvent

    public init(renewal: RenewalRecord, audit: AuditEvent) {
        self.renewal = renewal
        self.audit = audit
    }
}

/// The read-only view an OCSP responder and status pages use.
public protocol CertificateStatusReader: Sendable {
    func certificate(serial: SerialNumber) async throws -> CertificateRecord?
}

/// An OCSP answer signed ahead of the questions (RFC 5019 style): kept in the store, shared by every instance.
public struct PresignedOCSPAnswer: Sendable, Equatable {
    public let serial: SerialNumber
    public let profile: CertificateProfileKind
    /// The status the answer states; it is stored only while the certificate still has it.
    public let status: CertificateRecord.Status
    public let der: [UInt8]
    public let thisUpdate: Timestamp
    public let nextUpdate: Timestamp
    /// When it should be signed again (well before `nextUpdate`).
    public let refreshAfter: Timestamp

    public init(
        serial: SerialNumber, profile: CertificateProfileKind, status: CertificateRecord.Status, der: [UInt8], thisUpdate: Timestamp,
        nextUpdate: Timestamp, refreshAfter: Timestamp
    ) {
        self.serial = serial
        self.profile = profile
        self.status = status
        self.der = der
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.refreshAfter = refreshAfter
    }
}

/// What the OCSP responder keeps between questions. Revoking a certificate deletes its pre-signed answer in the
/// revocation's own transaction, so a stored answer is never staler than its certificate's status.
public protocol OCSPAnswerStore: CertificateStatusReader {
    func presignedAnswer(serial: SerialNumber) async throws -> PresignedOCSPAnswer?
    /// Stores answers (not durably: they are signed again when lost). Each is stored only while its certificate
    /// still has the status it states, so an answer signed just before a revocation is never kept after it.
    func savePresignedAnswers(_ answers: [PresignedOCSPAnswer]) async throws
    /// The certificates whose pre-signed answer is due to be signed again, earliest first.
    func certificatesWithAnswersDue(at now: Timestamp, limit: Int) async throws -> [CertificateRecord]
    func deletePresignedAnswers(_ serials: [SerialNumber]) async throws
    /// Revocations committed after audit entry `sequence`, in order (by any process): how every instance learns
    /// which answers it holds in memory are no longer true.
    func revocations(after sequence: Int64, limit: Int) async throws -> [(sequence: Int64, serial: SerialNumber)]
    /// The audit sequence to follow revocations from (the chain's head now).
    func currentAuditSequence() async throws -> Int64
}

/// Reading the audit log back, for `audit verify` and later for audit search.
public protocol AuditLogReader: Sendable {
    /// Calls `body` with every entry in sequence order, as stored (without checking anything).
    func forEachAuditEntry(_ body: @escaping @Sendable (AuditEntry) throws -> Void) async throws
    /// The sequence number and hash that the store records as the chain's head; nil while the log is empty.
    func auditHead() async throws -> (sequence: Int64, hash: String)?
}

/// Appending audit events that are not part of another write (logins, refused requests, CA creation).
public protocol AuditLogWriter: Sendable {
    @discardableResult
    func appendAudit(_ event: AuditEvent) async throws -> AuditEntry
}

/// What card issuing needs.
public protocol CardRegistry: Sendable {
    /// Stores a new card with its sealed secrets and the audit entry, in one transaction.
    func addCard(_ card: CardRecord, audit: AuditEvent) async throws
    func card(serial: String) async throws -> CardRecord?
    func cancelCard(serial: String, audit: AuditEvent) async throws
    /// Records that the card's PUK goes out for one unlock, with the PUK that replaces it on the card (kept when a
    /// release is already pending); returns the card as stored.
    func releasePUK(serial: String, nextSealed: [UInt8], at time: Timestamp, audit: AuditEvent) async throws -> CardRecord
    /// The card now has its new PUK: it becomes the stored one. False when no rotation was pending.
    func completePUKRotation(serial: String, audit: AuditEvent) async throws -> Bool
}

/// Enrolling a blank card at a workstation with an RA's token.
public protocol EnrolmentStore: Sendable {
    func addEnrolment(_ enrolment: EnrolmentRecord, audit: AuditEvent) async throws
    func enrolment(tokenHash: String) async throws -> EnrolmentRecord?
    /// Stores the card being enrolled (status `enrolling`) and ties it to the enrolment, in one transaction; only the
    /// first call for an enrolment does (later ones return false, and the caller reads the card already tied to it).
    func attachCard(_ card: CardRecord, toEnrolment id: String, audit: AuditEvent) async throws -> Bool
    /// The card is enrolled: it becomes active and the enrolment is done (true only the first time).
    func completeEnrolment(id: String, cardSerial: String, audit: AuditEvent) async throws -> Bool
    /// A card that cannot change its management key keeps the factory one: it is stored instead (enrolling cards only).
    func replaceManagementKey(serial: String, sealed: [UInt8], audit: AuditEvent) async throws
    /// Enrolments left behind: a card attached, the token expired before `cutoff`, not completed; and expired ones
    /// whose card still has a valid certificate (the sweep stopped half-way). Oldest first, at most `limit`.
    func abandonedEnrolments(before cutoff: Timestamp, limit: Int) async throws -> [EnrolmentRecord]
    /// Ends an abandoned enrolment: it becomes `expired` and its card `cancelled`, in one transaction. False when it
    /// was completed (or ended) meanwhile: completion and the sweep cannot both win.
    func abandonEnrolment(id: String, cardSerial: String, audit: AuditEvent) async throws -> Bool
}

/// What the renewal engine needs beyond the CA: challenges, renewal state, and the card's certificates.
public protocol RenewalStore: AuditLogWriter {
    func card(serial: String) async throws -> CardRecord?
    /// The card's certificates not revoked (status `good`), newest first.
    func goodCertificates(cardSerial: String) async throws -> [CertificateRecord]
    func certificates(renewalID: String) async throws -> [CertificateRecord]
    func certificate(serial: SerialNumber) async throws -> CertificateRecord?

    /// Stores a fresh challenge. The write need not survive a crash (the card then asks for another challenge);
    /// `consumeChallenge` must.
    func addChallenge(_ nonce: String, purpose: String, expiresAt: Timestamp) async throws
    /// Uses a challenge up: true only the first time, and only before it expires.
    func consumeChallenge(_ nonce: String, purpose: String, now: Timestamp) async throws -> Bool
    /// Writes that a card challenge (stored nowhere until now) is used: true only the first time.
    func useChallenge(_ use: ChallengeUse) async throws -> Bool

    /// The card's unfinished renewal, if any.
    func activeRenewal(cardSerial: String) async throws -> RenewalRecord?
    /// The card's most recent renewal, finished or not.
    func latestRenewal(cardSerial: String) async throws -> RenewalRecord?
    /// How many renewals of the card its holder finished themselves since the card was issued or last renewed by an
    /// RA (the self-renewal policy counts them).
    func finishedSelfRenewals(cardSerial: String) async throws -> Int
    func renewal(id: String) async throws -> RenewalRecord?
    /// Inserts (version 1) or updates a renewal with its audit entry. An update must name the version it read;
    /// a stale version throws `.renewalConflict` and writes nothing.
    func saveRenewal(_ renewal: RenewalRecord, audit: AuditEvent) async throws
    /// `saveRenewal`, and in the same transaction the use of the card challenge that started (or resumed) it; false
    /// (nothing written) when that challenge was used already.
    func saveRenewal(_ renewal: RenewalRecord, audit: AuditEvent, using challenge: ChallengeUse) async throws -> Bool
}

/// What the RA console reads about the people its staff serve.
public protocol RADirectory: AuditLogWriter {
    func user(id: UserID) async throws -> User?
    /// People in `organisation` (employed there, or holding a role there) whose user ID is `query`, or whose given
    /// name, family name or full name starts with it (any case); at most `limit`, by family name.
    func findPeople(matching query: String, organisation: String, limit: Int) async throws -> [User]
    /// A person's cards, newest first.
    func cards(userID: UserID) async throws -> [CardRecord]
    /// A person's certificates, newest first.
    func certificates(userID: UserID) async throws -> [CertificateRecord]
    func contacts(userID: UserID) async throws -> ContactDetails?
    /// The newest audit entries about any of `subjects` (`user:…`, `card:…`), newest first.
    func auditEntries(subjects: [String], limit: Int) async throws -> [AuditEntry]
    /// Audit entries matching `filter` that concern `organisation` (their subject or actor is one of its people or
    /// their cards), newest first, older than sequence `before` when given; at most `limit`.
    func searchAudit(_ filter: AuditFilter, organisation: String, before: Int64?, limit: Int) async throws -> [AuditEntry]
    /// Adds a role after the person's others, audited; `.userExists` when they hold it already.
    func addRole(_ role: Role, to id: UserID, audit: AuditEvent) async throws
    /// Checks the whole audit chain (see `SQLStore.verifyAuditChain`).
    func verifyAuditChain(anchor: AuditChain.Anchor?) async throws -> AuditChain.Verdict
    /// Good certificates of `organisation`'s people (employed there or holding a role there) that expire in
    /// [`from`, `to`), soonest first.
    func certificatesFallingDue(organisation: String, from: Timestamp, to: Timestamp) async throws -> [CertificateFallingDue]
}

/// What an audit search asks for; every part is optional and they all hold together.
public struct AuditFilter: Hashable, Sendable {
    /// About this person: their own entries (as subject or actor) and their cards'.
    public var person: UserID?
    public var card: String?
    /// Done by this person (an RA, say).
    public var actor: UserID?
    public var action: String?
    public var from: Timestamp?
    /// Before this moment.
    public var to: Timestamp?

    public init(person: UserID? = nil, card: String? = nil, actor: UserID? = nil, action: String? = nil, from: Timestamp? = nil, to: Timestamp? = nil) {
        self.person = person
        self.card = card
        self.actor = actor
        self.action = action
        self.from = from
        self.to = to
    }
}

/// A certificate falling due, with whose it is (the expiry report).
public struct CertificateFallingDue: Hashable, Sendable {
    public let userID: UserID
    public let givenName: String
    public let familyName: String
    public let profile: CertificateProfileKind
    public let serial: SerialNumber
    public let cardSerial: String?
    public let notAfter: Timestamp

    public init(userID: UserID, givenName: String, familyName: String, profile: CertificateProfileKind, serial: SerialNumber, cardSerial: String?, notAfter: Timestamp) {
        self.userID = userID
        self.givenName = givenName
        self.familyName = familyName
        self.profile = profile
        self.serial = serial
        self.cardSerial = cardSerial
        self.notAfter = notAfter
    }
}

/// What signing in needs.
public protocol SessionStore: Sendable {
    func user(id: UserID) async throws -> User?
    /// Stores a new session with its audit entry and, in the same transaction, the use of the card challenge that
    /// opened it; false (nothing written) when that challenge was used already.
    @discardableResult
    func addSession(_ session: SessionRecord, audit: AuditEvent, using challenge: ChallengeUse?) async throws -> Bool
    /// Sets the role of an open session (with its audit entry); false when the session has ended.
    func chooseRole(sessionID: String, role: Role, audit: AuditEvent) async throws -> Bool
    /// Moves an open session's last-seen time forward; never touches an ended session.
    func touchSession(id: String, lastSeenAt: Timestamp) async throws
    /// Ends an open session (the audit entry is written only when this call ended it); false when it had already
    /// ended. No update of a session ever reopens it.
    func endSession(id: String, at: Timestamp, reason: String, audit: AuditEvent?) async throws -> Bool
    func session(tokenHash: String) async throws -> SessionRecord?
    func session(id: String) async throws -> SessionRecord?
}

/// What self-service unlock and contact registration need.
public protocol UnlockStore: Sendable {
    func user(id: UserID) async throws -> User?
    func card(serial: String) async throws -> CardRecord?
    func contacts(userID: UserID) async throws -> ContactDetails?
    func saveContacts(_ contacts: ContactDetails, audit: AuditEvent) async throws
    /// Stores a new code with the message that carries it and its audit entry, in one transaction, unless
    /// `limit` codes of the same purpose were created for the same card (or, without a card, the same user) in the
    /// hour before it: then throws `CodeLimitReached` and writes nothing.
    func addCode(_ code: OneTimeCodeRecord, message: OutboxMessage, audit: AuditEvent, limit: Int) async throws
    func code(id: String) async throws -> OneTimeCodeRecord?
    /// Takes one attempt at a code, atomically: counts it and answers the code (with the attempt's number in
    /// `failedAttempts`) only while the code is unused, not voided, unexpired and has had fewer than `maximum`
    /// attempts; nil otherwise. However many requests run at once, at most `maximum` attempts are ever checked.
    func takeCodeAttempt(id: String, purpose: OneTimeCodeRecord.Purpose, now: Timestamp, maximum: Int) async throws -> OneTimeCodeRecord?
    /// Records a wrong attempt (audited), voiding the code when `void`.
    func recordWrongCode(id: String, void: Bool, at: Timestamp, audit: AuditEvent) async throws
    /// Marks a code used, with the token it gives (compare-and-set): false when it was used or voided meanwhile.
    func useCode(id: String, at: Timestamp, tokenHash: String?, tokenExpiresAt: Timestamp?, audit: AuditEvent) async throws -> Bool
    /// Marks a used code's purpose completed (compare-and-set): false when it already was.
    func completeCode(id: String, at: Timestamp, audit: AuditEvent) async throws -> Bool
    func appendAudit(_ event: AuditEvent) async throws -> AuditEntry
    /// Queues a message that carries no code (a notice), with its audit entry.
    func addMessage(_ message: OutboxMessage, audit: AuditEvent) async throws
}

/// Thrown by `addCode` when the hourly limit is reached: the earliest moment another code may be asked for.
public struct CodeLimitReached: Error, Sendable {
    public let retryAfter: Timestamp
    public init(retryAfter: Timestamp) { self.retryAfter = retryAfter }
}

/// What the message sender needs.
public protocol OutboxStore: Sendable {
    /// Unsent messages whose next attempt is due, oldest first.
    func dueMessages(now: Timestamp, limit: Int) async throws -> [OutboxMessage]
    /// Takes a due message for sending until `leaseUntil`, unless another worker (another server instance) took it
    /// first: true when this caller has it.
    func claimMessage(_ message: OutboxMessage, leaseUntil: Timestamp) async throws -> Bool
    /// Sent: the sealed body is wiped.
    func markSent(id: String, at: Timestamp) async throws
    func markFailed(id: String, error: String, nextAttemptAt: Timestamp) async throws
}

/// Request counters for rate limits, in the store so that every server instance counts against the same limit.
public protocol RateLimitStore: Sendable {
    /// Adds `count` requests to `bucket` (for example `signin:addr:192.0.2.7`) for the window starting at
    /// `windowStart`, starting the count again when the window is new; answers the window's count including them.
    func countRequests(bucket: String, windowStart: Timestamp, count: Int64) async throws -> Int64
    /// Appends `audit` for the first refusal in this bucket's window only: true when this call wrote it.
    func auditRefusalOnce(bucket: String, windowStart: Timestamp, audit: AuditEvent) async throws -> Bool
}

/// Which workstations run an agent (a hint for the page, not a record): in the store, so that the instance a page
/// asks knows of an agent that checked in with another.
public protocol AgentPresenceStore: Sendable {
    /// Records (not durably) that an agent checked in from `address` with its bridge on `bridgePort`.
    func recordAgentCheckIn(address: String, bridgePort: Int, at time: Timestamp) async throws
    /// The bridge port of the agent that checked in from `address` at or after `since`, if any.
    func agentBridgePort(address: String, since: Timestamp) async throws -> Int?
}

/// Housekeeping: what may be deleted once it has expired.
/// What the expiry reminders need.
public protocol ReminderStore: Sendable {
    /// Active cards whose earliest good certificate expires in (`now`, `until`], with that expiry and the holder's
    /// confirmed email address (nil when none), soonest first.
    func cardsExpiring(after now: Timestamp, until: Timestamp, limit: Int) async throws -> [ExpiringCard]
    /// Records that the reminder `days` before `notAfter` went to `card`, and queues its message, in one
    /// transaction; false (and nothing written) when it was recorded already (by this or another instance).
    func recordReminder(card: String, days: Int, notAfter: Timestamp, message: OutboxMessage, audit: AuditEvent) async throws -> Bool
}

/// A card falling due, as the reminders see it.
public struct ExpiringCard: Hashable, Sendable {
    public let cardSerial: String
    public let userID: UserID
    public let givenName: String
    public let notAfter: Timestamp
    public let email: String?

    public init(cardSerial: String, userID: UserID, givenName: String, notAfter: Timestamp, email: String?) {
        self.cardSerial = cardSerial
        self.userID = userID
        self.givenName = givenName
        self.notAfter = notAfter
        self.email = email
    }
}

public protocol MaintenanceStore: Sendable {
    /// Deletes expired challenges and rate-limit windows older than a day; answers how many rows went.
    func purgeExpired(now: Timestamp) async throws -> Int
}

/// A card challenge used up. Challenges are stored nowhere until they are used (each carries its expiry and a MAC);
/// the hash of a used one is written once, so that it cannot be used again before it expires.
public struct ChallengeUse: Hashable, Sendable {
    public let hash: String
    public let purpose: String
    public let expiresAt: Timestamp
    public let usedAt: Timestamp

    public init(hash: String, purpose: String, expiresAt: Timestamp, usedAt: Timestamp) {
        self.hash = hash
        self.purpose = purpose
        self.expiresAt = expiresAt
        self.usedAt = usedAt
    }
}
