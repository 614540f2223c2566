/// What RA staff may do for a card holder, as data: the national RA guidance's table, and its two rules — nobody
/// performs an RA action on their own card, and RA staff act only for people in the organisations their RA role covers.
public enum RAAction: String, CaseIterable, Hashable, Sendable, Codable, CustomStringConvertible {
    case issueCard
    case unlockCard
    case renewDue
    case renewExpired
    case repair
    case clear
    case cancelCard

    public var description: String {
        switch self {
        case .issueCard: "issue a card"
        case .unlockCard: "unlock a card"
        case .renewDue: "renew certificates that fall due"
        case .renewExpired: "renew expired certificates"
        case .repair: "repair a card"
        case .clear: "clear a card"
        case .cancelCard: "cancel a card permanently"
        }
    }
}

public enum RAPolicy {
    /// Who may do what (RA Manager, RA Agent (Advanced), RA Agent: everything; Sponsor and Local Smartcard
    /// Administrator: unlock, and renew certificates that fall due).
    public static func allows(_ role: RARole, _ action: RAAction) -> Bool {
        switch role {
        case .manager, .agentAdvanced, .agent: true
        case .sponsor, .localSmartcardAdministrator: action == .unlockCard || action == .renewDue
        }
    }

    /// The outcome of asking to act for someone: allowed, or refused with the reason shown to the RA.
    public enum Verdict: Hashable, Sendable {
        case allowed
        case refused(String)
    }

    /// Whether `actor`, working in `role` at `organisation`, may do `action` for `subject`.
    public static func decide(actor: UserID, role: RARole, organisation: String, action: RAAction, subject: User) -> Verdict {
        guard actor != subject.id else {
            return .refused("Nobody performs an RA action on their own card: ask another member of your Registration Authority.")
        }
        guard allows(role, action) else {
            return .refused("\(role.withArticle) may not \(action): ask an RA Agent or your RA Manager.")
        }
        return coverage(role: role, organisation: organisation, subject: subject)
    }

    /// Whether someone working in `role` for `organisation` may deal with `subject` at all (see `covers`).
    public static func coverage(role: RARole, organisation: String, subject: User) -> Verdict {
        covers(organisation, subject)
            ? .allowed
            : .refused("Your \(role) role covers \(organisation); \(subject.givenName) \(subject.familyName) works for \(subject.organisation). Ask their own Registration Authority.")
    }

    /// Whether an RA role for `organisation` covers `person`: employed there, or holding a role there.
    public static func covers(_ organisation: String, _ person: User) -> Bool {
        person.organisation == organisation || person.roles.contains { $0.organisation == organisation }
    }

    /// Whether someone working in `granter` may grant `role`: RA roles only below their own, and other (job) roles
    /// only with the right to issue cards (RA Agent and above).
    public static func mayGrant(_ granter: RARole, raRole role: RARole?) -> Bool {
        guard let role else { return allows(granter, .issueCard) }
        return role < granter && allows(granter, .issueCard)
    }
}
