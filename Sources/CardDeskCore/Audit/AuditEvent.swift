/// A security event for the append-only audit log: who did what to whom, when, and how it ended.
public struct AuditEvent: Hashable, Sendable {
    /// What happened. Names are dotted so that searches can match a family (`certificate.*`).
    public struct Action: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let pkiCreate = Action(rawValue: "pki.create")
        /// One step of the CA key ceremony (a key generated in the HSM, a CA certificate made).
        public static let caCeremony = Action(rawValue: "ca.ceremony")
        public static let userAdd = Action(rawValue: "user.add")
        public static let certificateIssue = Action(rawValue: "certificate.issue")
        public static let certificateRevoke = Action(rawValue: "certificate.revoke")
        public static let crlPublish = Action(rawValue: "crl.publish")
        public static let login = Action(rawValue: "login")
        public static let renewalStep = Action(rawValue: "renewal.step")
        public static let unlock = Action(rawValue: "card.unlock")
        public static let contactsUpdate = Action(rawValue: "user.contacts")
        public static let codeSend = Action(rawValue: "code.send")
        public static let codeCheck = Action(rawValue: "code.check")
        public static let raAction = Action(rawValue: "ra.action")
        /// An RA looked at a person's record in the console (who saw whose personal data).
        public static let raView = Action(rawValue: "ra.view")
        /// An email reminding a card holder that their certificates fall due.
        public static let expiryReminder = Action(rawValue: "reminder.send")
        public static let cardEnrol = Action(rawValue: "card.enrol")
        public static let rateLimit = Action(rawValue: "rate.limit")

        /// Every action CardDesk writes (the audit search offers them).
        public static let all: [Action] = [
            .pkiCreate, .caCeremony, .userAdd, .certificateIssue, .certificateRevoke, .crlPublish, .login, .renewalStep, .unlock,
            .contactsUpdate, .codeSend, .codeCheck, .raAction, .raView, .expiryReminder, .cardEnrol, .rateLimit,
        ]
    }

    /// How it ended. Kept as the stored text, so an edited row can never read back as a valid outcome.
    public struct Outcome: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let success = Outcome(rawValue: "success")
        public static let failure = Outcome(rawValue: "failure")
    }

    public let action: Action
    /// Who acted: `operator:<unix user>`, `user:<id>`, `ra:<id>`, `system`.
    public let actor: String
    /// Whom or what it acted on: `user:<id>`, `certificate:<serial>`, `ca:<name>`.
    public let subject: String
    public let outcome: Outcome
    /// Free text for people: reason codes, profile, serials. Never a passcode, PUK or one-time code.
    public let details: String
    public let time: Timestamp

    /// The longest actor or subject, and the longest details, an entry keeps (characters). Whatever a request
    /// carries, an audit entry stays small: an unauthenticated client cannot fill the disk through the log.
    public static let maximumNameLength = 128
    public static let maximumDetailsLength = 1024

    public init(action: Action, actor: String, subject: String, outcome: Outcome = .success, details: String = "", time: Timestamp) {
        self.action = action
        self.actor = Self.capped(actor, Self.maximumNameLength)
        self.subject = Self.capped(subject, Self.maximumNameLength)
        self.outcome = outcome
        self.details = Self.capped(details, Self.maximumDetailsLength)
        self.time = time
    }

    /// An entry exactly as stored (reading the log back): nothing is capped, so the hash is checked over what is there.
    public init(stored action: Action, actor: String, subject: String, outcome: Outcome, details: String, time: Timestamp) {
        self.action = action
        self.actor = actor
        self.subject = subject
        self.outcome = outcome
        self.details = details
        self.time = time
    }

    static func capped(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 12)) + "…[truncated]"
    }
}

/// An audit event as stored: its position in the chain and the hashes that link it.
public struct AuditEntry: Hashable, Sendable {
    public let sequence: Int64
    public let event: AuditEvent
    /// Hex SHA-256 of the previous entry (64 zeros for the first).
    public let previousHash: String
    /// Hex SHA-256 over `previousHash` and this entry's fields.
    public let hash: String

    public init(sequence: Int64, event: AuditEvent, previousHash: String, hash: String) {
        self.sequence = sequence
        self.event = event
        self.previousHash = previousHash
        self.hash = hash
    }
}
