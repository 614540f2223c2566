public import CardDeskAPI
import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
import Foundation
import X509

/// Signing in with a card: the card signs a fresh server challenge with its authentication key (the passcode stays
/// on the card), the server checks it against the certificate in force, and opens a session in one of the user's
/// roles. Sessions end when the card is removed, on logout, or after `idleTimeout` without use.
public struct LoginService: Sendable {
    let store: any RenewalStore & SessionStore & AuditLogWriter
    let renewal: RenewalEngine
    let clock: any WallClock
    /// Seconds without use after which a session ends.
    public let idleTimeout: Int64

    public init(store: any RenewalStore & SessionStore & AuditLogWriter, renewal: RenewalEngine, clock: any WallClock, idleTimeout: Int64 = 15 * 60) {
        self.store = store
        self.renewal = renewal
        self.clock = clock
        self.idleTimeout = idleTimeout
    }

    public func challenge() async throws -> String {
        CardChallenges.issue(purpose: "login", key: renewal.challengeKey, clock: clock)
    }

    public func login(cardSerial: String, challenge: String, signature: [UInt8]) async throws -> SessionView {
        let now = clock.now()
        // Checked before anything is read or written (the audit entry of a refusal names the serial).
        let cardSerial = try Identifiers.cardSerial(cardSerial)
        _ = try Identifiers.token(challenge)
        _ = try Identifiers.signature(signature)
        do {
            // The challenge is used in the session's own transaction: a sign-in is one commit.
            let (card, inForce, certificate, use) = try await CardChallenges.signer(
                of: signature, over: LoginMessage.make(challenge: challenge, cardSerial: cardSerial), challenge: challenge, purpose: "login",
                cardSerial: cardSerial, retry: "Try again.", store: store, key: renewal.challengeKey, now: now, deferUse: true
            )
            guard certificate.notAfter > now else {
                throw CardDeskError(.certificatesExpired, "Your authentication certificate expired on \(certificate.notAfter.dateDescription). Ask your Registration Authority to renew it.")
            }
            guard let user = try await store.user(id: card.userID), user.status == .active else {
                throw CardDeskError(.userNotActive, "Your account is not active. Ask your Registration Authority.")
            }
            let token = CardChallenges.randomToken()
            let session = SessionRecord(
                id: SecureRandom.uuid(), tokenHash: CardChallenges.hash(token), userID: user.id, cardSerial: card.serial,
                certificateSerial: certificate.serial, role: user.roles.count == 1 ? user.roles[0] : nil, createdAt: now, lastSeenAt: now
            )
            guard try await store.addSession(session, audit: AuditEvent(
                action: .login, actor: "card:\(card.serial)", subject: "user:\(user.id)",
                details: "session=\(session.id) certificate=\(certificate.serial.hex)" + (session.role.map { " role=\($0)" } ?? ""), time: now
            ), using: use) else {
                throw CardChallenges.alreadyUsed("Try again.")
            }
            return try await view(session, user: user, token: token, inForce: inForce)
        } catch let error as CardDeskError {
            // Refused sign-ins are security events too.
            _ = try? await store.appendAudit(AuditEvent(
                action: .login, actor: "card:\(cardSerial)", subject: "card:\(cardSerial)", outcome: .failure,
                details: error.code.name, time: now
            ))
            throw error
        }
    }

    /// Chooses the role to work in, by its number in the list (from 1). Chosen in a page, it is the role of the whole
    /// sign-in: the agent's session takes it too (what the agent does for the page, such as the RA desk's card work,
    /// is done in the role the page shows).
    public func chooseRole(token: String, number: Int) async throws -> SessionView {
        var (session, user) = try await active(token)
        guard (1...user.roles.count).contains(number) else {
            throw CardDeskError(.invalidInput, "Choose a role by its number, from 1 to \(user.roles.count).")
        }
        let role = user.roles[number - 1]
        session.role = role
        for id in [session.id] + (session.parentID.map { [$0] } ?? []) {
            guard try await store.chooseRole(sessionID: id, role: role, audit: AuditEvent(
                action: .login, actor: "user:\(user.id)", subject: "user:\(user.id)", details: "session=\(id) role=\(role)", time: clock.now()
            )) else {
                throw CardDeskError(.authenticationFailed, "You have been logged out. Insert your card and sign in again.")
            }
        }
        return try await view(session, user: user, token: nil)
    }

    public func current(token: String) async throws -> SessionView {
        let (session, user) = try await active(token)
        return try await view(session, user: user, token: nil)
    }

    /// Ends a session (`card removed`, `logged out`). Ending a browser session ends the agent's session it joined
    /// (logging out of the page logs the workstation out); ending the agent's session ends every page that joined it.
    public func logout(token: String, reason: String) async throws {
        guard let session = try await store.session(tokenHash: CardChallenges.hash(token)) else { return }
        try await end(session, reason: reason)
        if let parentID = session.parentID, let parent = try await store.session(id: parentID) {
            try await end(parent, reason: reason)
        }
    }

    private func end(_ session: SessionRecord, reason: String) async throws {
        guard session.endedAt == nil else { return }
        _ = try await store.endSession(id: session.id, at: clock.now(), reason: reason, audit: AuditEvent(
            action: .login, actor: "user:\(session.userID)", subject: "user:\(session.userID)", details: "session=\(session.id) ended: \(reason)", time: clock.now()
        ))
    }

    /// How long a hand-over code may be used, in seconds.
    public static let handoverLifetime: Int64 = 60

    /// A single-use code with which a browser joins the agent's session. The agent asks for it with its own token;
    /// the code is `<session id>.<random>`, stored only as a hash.
    public func handover(token: String) async throws -> LoginAPI.Handover {
        let (session, _) = try await active(token)
        guard session.parentID == nil else {
            throw CardDeskError(.notAuthorised, "Only the workstation agent's own session can hand over to a browser.")
        }
        guard session.role != nil else {
            throw CardDeskError(.invalidInput, "Choose the role to work in before opening the browser.")
        }
        let secret = CardChallenges.randomToken()
        try await store.addChallenge(CardChallenges.hash(secret), purpose: "handover:\(session.id)", expiresAt: clock.now().adding(seconds: Self.handoverLifetime))
        return .init(code: "\(session.id).\(secret)", expiresInSeconds: Int(Self.handoverLifetime))
    }

    /// Redeems a hand-over code: a new browser session joined to the agent's, with its own token (for a cookie).
    public func redeemHandover(code: String) async throws -> SessionView {
        let now = clock.now()
        let parts = code.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, (try? Identifiers.requestID(parts[0])) != nil, (try? Identifiers.token(parts[1])) != nil, try await store.consumeChallenge(CardChallenges.hash(parts[1]), purpose: "handover:\(parts[0])", now: now),
              let parent = try await store.session(id: parts[0]), parent.endedAt == nil, parent.parentID == nil
        else {
            throw CardDeskError(.authenticationFailed, "This sign-in link has expired or was already used. Sign in again from the page.")
        }
        guard let user = try await store.user(id: parent.userID) else {
            throw CardDeskError(.authenticationFailed, "You are not signed in.")
        }
        let token = CardChallenges.randomToken()
        let session = SessionRecord(
            id: SecureRandom.uuid(), tokenHash: CardChallenges.hash(token), userID: parent.userID, cardSerial: parent.cardSerial,
            certificateSerial: parent.certificateSerial, role: parent.role, createdAt: now, lastSeenAt: now, parentID: parent.id
        )
        try await store.addSession(session, audit: AuditEvent(
            action: .login, actor: "card:\(parent.cardSerial)", subject: "user:\(parent.userID)",
            details: "session=\(session.id) browser joined session=\(parent.id)", time: now
        ), using: nil)
        return try await view(session, user: user, token: token)
    }

    /// Whether the session is open, without counting as activity (the pages ask every second).
    public func status(token: String) async throws -> LoginAPI.SessionStatus {
        guard let session = try await store.session(tokenHash: CardChallenges.hash(token)) else {
            return .init(active: false, reason: "not signed in")
        }
        let ended = try await endIfOver(session)
        return .init(active: ended.endedAt == nil, reason: ended.endReason)
    }

    /// The agent's periodic check-in: is its session still open? Counts as activity, but writes the last-seen time
    /// at most every `keepAliveWrite` seconds, so thousands of agents checking in cost reads, not commits.
    public func keepAlive(token: String) async throws -> LoginAPI.SessionStatus {
        guard let found = try await store.session(tokenHash: CardChallenges.hash(token)) else {
            return .init(active: false, reason: "not signed in")
        }
        let session = try await endIfOver(found)
        guard session.endedAt == nil else { return .init(active: false, reason: session.endReason) }
        let now = clock.now()
        if session.lastSeenAt.adding(seconds: Self.keepAliveWrite) < now {
            try await store.touchSession(id: session.id, lastSeenAt: now)
        }
        return .init(active: true, reason: nil)
    }

    /// Seconds between last-seen writes from check-ins.
    public static let keepAliveWrite: Int64 = 120

    /// The token the pages of this browser session present to the agent's localhost bridge.
    public func bridgeToken(token: String) async throws -> String? {
        guard let session = try await store.session(tokenHash: CardChallenges.hash(token)) else { return nil }
        guard let parentID = session.parentID else { return BridgeToken.derive(sessionTokenHash: session.tokenHash) }
        return try await store.session(id: parentID).map { BridgeToken.derive(sessionTokenHash: $0.tokenHash) }
    }

    /// Ends a session that was idle too long, or whose agent session ended (with the agent session's reason).
    private func endIfOver(_ session: SessionRecord) async throws -> SessionRecord {
        guard session.endedAt == nil else { return session }
        var session = session
        let now = clock.now()
        let ended: Bool
        if let parentID = session.parentID, let parent = try await store.session(id: parentID), let parentEnded = parent.endedAt {
            session.endedAt = parentEnded
            session.endReason = parent.endReason ?? "logged out"
            ended = try await store.endSession(id: session.id, at: parentEnded, reason: session.endReason ?? "logged out", audit: nil)
        } else if session.lastSeenAt.adding(seconds: idleTimeout) < now {
            session.endedAt = now
            session.endReason = "idle timeout"
            ended = try await store.endSession(id: session.id, at: now, reason: "idle timeout", audit: AuditEvent(
                action: .login, actor: "user:\(session.userID)", subject: "user:\(session.userID)", details: "session=\(session.id) ended: idle timeout", time: now
            ))
        } else {
            return session
        }
        // Another request (logout, card removed) ended it first: what that request wrote is the truth.
        if !ended, let stored = try await store.session(id: session.id) { return stored }
        return session
    }

    /// The session for a token, if it is still open; ends it when it has been idle too long.
    func active(_ token: String) async throws -> (SessionRecord, User) {
        guard let found = try await store.session(tokenHash: CardChallenges.hash(token)) else {
            throw CardDeskError(.authenticationFailed, "You are not signed in. Insert your card and sign in.")
        }
        let now = clock.now()
        var session = try await endIfOver(found)
        if let reason = session.endReason, session.endedAt != nil {
            throw CardDeskError(.authenticationFailed, "You have been logged out (\(reason)). Insert your card and sign in again.")
        }
        guard let user = try await store.user(id: session.userID) else {
            throw CardDeskError(.authenticationFailed, "You are not signed in.")
        }
        session.lastSeenAt = now
        try await store.touchSession(id: session.id, lastSeenAt: now)
        return (session, user)
    }

    /// The session as its holder sees it, with the card (read again unless `inForce` has it, as sign-in does).
    func view(_ session: SessionRecord, user: User, token: String?, inForce known: CardInForce? = nil) async throws -> SessionView {
        let inForce = if let known { known } else { try await CardInForce.load(session.cardSerial, store: store) }
        let current = inForce.current
        return SessionView(
            id: session.id, token: token, userID: user.id.rawValue, name: "\(user.givenName) \(user.familyName)",
            organisation: user.organisation, roles: user.roles.map(\.description), role: session.role?.description,
            certificates: CertificateProfileKind.allCases.compactMap { profile in
                current[profile].map { SessionView.Certificate(profile: profile, serial: $0.serial.hex, notAfter: $0.notAfter) }
            },
            renewal: try await renewal.status(inForce)
        )
    }
}
