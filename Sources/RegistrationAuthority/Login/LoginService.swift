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
        try await CardChallenges.issue(purpose: "login", store: store, clock: clock)
    }

    public func login(cardSerial: String, challenge: String, signature: [UInt8]) async throws -> SessionView {
        let now = clock.now()
        do {
            guard try await store.consumeChallenge(challenge, purpose: "login", now: now) else {
                throw CardDeskError(.authenticationFailed, "The sign-in challenge has expired or was already used. Try again.")
            }
            let (card, current) = try await CardInForce.load(cardSerial, store: store)
            let candidates = try await CardInForce.authenticationCandidates(card: card, current: current, store: store)
            let message = LoginMessage.make(challenge: challenge, cardSerial: card.serial)
            guard let certificate = try candidates.first(where: { try CardChallenges.verify(signature, over: message, by: $0) }) else {
                throw CardDeskError(.authenticationFailed, "The card's signature does not verify with its authentication certificate: this is not the card it claims to be.")
            }
            guard certificate.notAfter > now else {
                throw CardDeskError(.certificatesExpired, "Your authentication certificate expired on \(certificate.notAfter.dateDescription). Ask your Registration Authority to renew it.")
            }
            guard let user = try await store.user(id: card.userID), user.status == .active else {
                throw CardDeskError(.userNotActive, "Your account is not active. Ask your Registration Authority.")
            }
            let token = CardChallenges.randomToken()
            let session = SessionRecord(
                id: UUID().uuidString.lowercased(), tokenHash: CardChallenges.hash(token), userID: user.id, cardSerial: card.serial,
                certificateSerial: certificate.serial, role: user.roles.count == 1 ? user.roles[0] : nil, createdAt: now, lastSeenAt: now
            )
            try await store.saveSession(session, audit: AuditEvent(
                action: .login, actor: "card:\(card.serial)", subject: "user:\(user.id)",
                details: "session=\(session.id) certificate=\(certificate.serial.hex)" + (session.role.map { " role=\($0)" } ?? ""), time: now
            ))
            return try await view(session, user: user, token: token)
        } catch let error as CardDeskError {
            // Refused sign-ins are security events too.
            _ = try? await store.appendAudit(AuditEvent(
                action: .login, actor: "card:\(cardSerial)", subject: "card:\(cardSerial)", outcome: .failure,
                details: error.code.name, time: now
            ))
            throw error
        }
    }

    /// Chooses the role to work in, by its number in the list (from 1).
    public func chooseRole(token: String, number: Int) async throws -> SessionView {
        var (session, user) = try await active(token)
        guard (1...user.roles.count).contains(number) else {
            throw CardDeskError(.invalidInput, "Choose a role by its number, from 1 to \(user.roles.count).")
        }
        session.role = user.roles[number - 1]
        try await store.saveSession(session, audit: AuditEvent(
            action: .login, actor: "user:\(user.id)", subject: "user:\(user.id)", details: "session=\(session.id) role=\(user.roles[number - 1])", time: clock.now()
        ))
        return try await view(session, user: user, token: nil)
    }

    public func current(token: String) async throws -> SessionView {
        let (session, user) = try await active(token)
        return try await view(session, user: user, token: nil)
    }

    /// Ends a session (`card removed`, `logged out`).
    public func logout(token: String, reason: String) async throws {
        guard var session = try await store.session(tokenHash: CardChallenges.hash(token)), session.endedAt == nil else { return }
        session.endedAt = clock.now()
        session.endReason = reason
        try await store.saveSession(session, audit: AuditEvent(
            action: .login, actor: "user:\(session.userID)", subject: "user:\(session.userID)", details: "session=\(session.id) ended: \(reason)", time: clock.now()
        ))
    }

    /// The session for a token, if it is still open; ends it when it has been idle too long.
    func active(_ token: String) async throws -> (SessionRecord, User) {
        guard var session = try await store.session(tokenHash: CardChallenges.hash(token)) else {
            throw CardDeskError(.authenticationFailed, "You are not signed in. Insert your card and sign in.")
        }
        let now = clock.now()
        if session.endedAt == nil, session.lastSeenAt.adding(seconds: idleTimeout) < now {
            session.endedAt = now
            session.endReason = "idle timeout"
            try await store.saveSession(session, audit: nil)
        }
        if let reason = session.endReason, session.endedAt != nil {
            throw CardDeskError(.authenticationFailed, "You have been logged out (\(reason)). Insert your card and sign in again.")
        }
        guard let user = try await store.user(id: session.userID) else {
            throw CardDeskError(.authenticationFailed, "You are not signed in.")
        }
        session.lastSeenAt = now
        try await store.saveSession(session, audit: nil)
        return (session, user)
    }

    func view(_ session: SessionRecord, user: User, token: String?) async throws -> SessionView {
        let (card, current) = try await CardInForce.load(session.cardSerial, store: store)
        return SessionView(
            id: session.id, token: token, userID: user.id.rawValue, name: "\(user.givenName) \(user.familyName)",
            organisation: user.organisation, roles: user.roles.map(\.description), role: session.role?.description,
            certificates: CertificateProfileKind.allCases.compactMap { profile in
                current[profile].map { SessionView.Certificate(profile: profile, serial: $0.serial.hex, notAfter: $0.notAfter) }
            },
            renewal: try await renewal.status(card: card, current: current)
        )
    }
}
