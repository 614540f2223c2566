public import CardDeskAPI
public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority

/// The Registration Authority console's reads: which RA role a signed-in session works in, finding people, and a
/// person's record. Every refusal is a `CardDeskError` with the reason shown to the RA, and is audited; every record
/// shown is audited too (who saw whose personal data).
public struct RAConsole: Sendable {
    let directory: any RADirectory
    /// The deployment's codes for the RA roles.
    public let codes: RARoleCodes
    let clock: any WallClock
    /// The last verification of the audit chain (walked at most once a minute), shared by the console's requests.
    let chainCheck = SharedMutex<(verdict: AuditChain.Verdict, at: Timestamp)?>(nil)
    /// What cancelling a card needs (nil: the console only reads).
    let cancellation: CardCancellation?
    /// What renewing and unlocking the card in the desk's second reader needs (nil: the console cannot).
    let cardWork: DeskCardWork?

    public init(
        directory: any RADirectory, codes: RARoleCodes, clock: any WallClock, cancellation: CardCancellation? = nil, cardWork: DeskCardWork? = nil
    ) {
        self.cardWork = cardWork
        self.directory = directory
        self.codes = codes
        self.clock = clock
        self.cancellation = cancellation
    }

    /// Where an RA works: who they are, in which RA role, for which organisation.
    public struct Desk: Sendable, Hashable, CustomStringConvertible {
        public let actor: UserID
        public let name: String
        public let role: RARole
        public let organisation: String

        /// "RA Agent for RBQ", as the pages and the audit log name it.
        public var description: String { "\(role) for \(organisation)" }
    }

    /// The RA roles a session's user holds, as the `CODE@ORG` texts of the session's roles with their numbers
    /// (1-based, as `LoginService.chooseRole` takes them).
    public func raRoles(of session: SessionView) -> [(number: Int, role: RARole, organisation: String)] {
        session.roles.enumerated().compactMap { index, text in
            guard let role = try? Role(parsing: text), let raRole = codes.raRole(code: role.code) else { return nil }
            return (index + 1, raRole, role.organisation)
        }
    }

    /// The desk of a session working in an RA role; refused (403) when the role in use is not one.
    public func desk(for session: SessionView) async throws -> Desk {
        let actor = try UserID(session.userID)
        guard let text = session.role, let role = try? Role(parsing: text), let raRole = codes.raRole(code: role.code) else {
            let held = raRoles(of: session)
            let reason = held.isEmpty
                ? "The RA console is for Registration Authority staff, and none of your roles is an RA role. Ask your RA Manager."
                : "Choose one of your RA roles to use the RA console."
            throw try await refusal(
                actor: actor, working: "", subject: "user:\(actor)", refused: "console", note: "the role in use (\(session.role ?? "none")) is not an RA role", reason: reason
            )
        }
        return Desk(actor: actor, name: session.name, role: raRole, organisation: role.organisation)
    }

    /// People of the desk's organisation whose user ID is `query`, or whose name starts with it (at most 50).
    public func search(_ desk: Desk, query: String) async throws -> [User] {
        let text = String(query.prefix(64))
        return try await directory.findPeople(matching: text, organisation: desk.organisation, limit: 50)
    }

    /// Everything the console shows about one person.
    public struct PersonRecord: Sendable {
        public let user: User
        public let cards: [CardRecord]
        public let certificates: [CertificateRecord]
        public let contacts: ContactDetails?
        public let history: [AuditEntry]
        /// What the desk may do for this person, action by action.
        public let allowed: [RAAction: RAPolicy.Verdict]
        /// When the record was read (certificates past their expiry then are shown as expired).
        public let readAt: Timestamp
    }

    /// A person's record, if they are in the desk's organisation (their own record too: the actions on it are refused).
    public func person(_ desk: Desk, id text: String) async throws -> PersonRecord {
        let user = try await subject(text)
        let id = user.id
        if case .refused(let reason) = RAPolicy.coverage(role: desk.role, organisation: desk.organisation, subject: user) {
            throw try await refusal(desk, subject: "user:\(id)", refused: "view", note: "the person is in \(user.organisation)", reason: reason)
        }
        let cards = try await directory.cards(userID: id)
        let record = PersonRecord(
            user: user,
            cards: cards,
            certificates: try await directory.certificates(userID: id),
            contacts: try await directory.contacts(userID: id),
            history: try await directory.auditEntries(subjects: ["user:\(id)"] + cards.map { "card:\($0.serial)" }, limit: 50),
            allowed: Dictionary(uniqueKeysWithValues: RAAction.allCases.map {
                ($0, RAPolicy.decide(actor: desk.actor, role: desk.role, organisation: desk.organisation, action: $0, subject: user))
            }),
            readAt: clock.now()
        )
        try await directory.appendAudit(AuditEvent(
            action: .raView, actor: "user:\(desk.actor)", subject: "user:\(id)", details: "\(desk)", time: clock.now()
        ))
        return record
    }

    /// The person a console address names (`/ra/people/{id}`).
    func subject(_ text: String) async throws -> User {
        guard let id = try? UserID(text), let user = try await directory.user(id: id) else {
            throw CardDeskError(.unknownUser, "No person with user ID \(text.prefix(20)) is registered.")
        }
        return user
    }

    /// Refuses (audited, with the reason) unless the desk may do `action` for `user`; `about`: the audit entry's
    /// subject; `refused`: how it names what was refused ("renew", "cancel"…).
    func require(_ desk: Desk, may action: RAAction, for user: User, about: String, refused: String) async throws {
        if case .refused(let why) = RAPolicy.decide(actor: desk.actor, role: desk.role, organisation: desk.organisation, action: action, subject: user) {
            throw try await refusal(desk, subject: about, refused: refused, note: why, reason: why)
        }
    }

    /// Audits that the desk was refused something (`refused`: "view", "cancel"…) and returns the error that tells the
    /// RA why, for the caller to throw.
    func refusal(_ desk: Desk, subject: String, refused: String, note: String? = nil, reason: String) async throws -> CardDeskError {
        try await refusal(actor: desk.actor, working: ": \(desk)", subject: subject, refused: refused, note: note, reason: reason)
    }

    private func refusal(actor: UserID, working who: String, subject: String, refused: String, note: String?, reason: String) async throws -> CardDeskError {
        try await directory.appendAudit(AuditEvent(
            action: .raAction, actor: "user:\(actor)", subject: subject, outcome: .failure,
            details: "\(refused) refused\(who)" + (note.map { "; \($0)" } ?? ""), time: clock.now()
        ))
        return CardDeskError(.notAuthorised, reason)
    }
}
