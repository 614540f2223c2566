/// The Registration Authority roles of the national RA guidance, highest first. A user holds one as a `Role` whose
/// code is the deployment's code for it (`RARoleCodes`), at the organisation it covers.
public enum RARole: String, CaseIterable, Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    case manager
    case agentAdvanced
    case agent
    case sponsor
    case localSmartcardAdministrator

    /// The name the national guidance and the console use.
    public var description: String {
        switch self {
        case .manager: "RA Manager"
        case .agentAdvanced: "RA Agent (Advanced)"
        case .agent: "RA Agent"
        case .sponsor: "Sponsor"
        case .localSmartcardAdministrator: "Local Smartcard Administrator"
        }
    }

    /// With its article, to start a sentence: "An RA Agent", "A Sponsor".
    public var withArticle: String { (description.hasPrefix("RA") ? "An " : "A ") + description }

    /// The hierarchy, highest first: RA Manager above all; RA Agent (Advanced) above RA Agent; then Sponsor, then
    /// Local Smartcard Administrator.
    var rank: Int { Self.allCases.count - Self.allCases.firstIndex(of: self)! }

    /// Higher in the hierarchy compares greater.
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

/// The role codes that stand for the RA roles in one deployment (configured; the defaults are CardDesk's own codes,
/// chosen not to collide with job role codes).
public struct RARoleCodes: Hashable, Sendable {
    public private(set) var codes: [RARole: String]

    public static let defaults = RARoleCodes(uncheckedCodes: [
        .manager: "RAMANAGER", .agentAdvanced: "RAAGENTADV", .agent: "RAAGENT", .sponsor: "RASPONSOR", .localSmartcardAdministrator: "RALSA",
    ])

    private init(uncheckedCodes codes: [RARole: String]) {
        self.codes = codes
    }

    /// Codes for some or all of the roles (the others keep their defaults); each must be a role code, and no two
    /// roles may share one.
    public init(_ overrides: [RARole: String]) throws(CardDeskError) {
        var codes = Self.defaults.codes
        for (role, code) in overrides {
            // The role code syntax is Role's: parse one to check it.
            _ = try Role(code: code, organisation: "RA0")
            codes[role] = code
        }
        guard Set(codes.values).count == codes.count else {
            throw CardDeskError(.configuration, "Two RA roles are configured with the same role code; each RA role needs its own.")
        }
        self.codes = codes
    }

    public func code(for role: RARole) -> String { codes[role]! }

    /// The RA role a role code stands for, if any.
    public func raRole(code: String) -> RARole? {
        codes.first { $0.value == code }?.key
    }

    /// The RA roles `user` holds, each with the organisation it covers, highest first.
    public func raRoles(of user: User) -> [(role: RARole, organisation: String)] {
        user.roles.compactMap { role in raRole(code: role.code).map { ($0, role.organisation) } }.sorted { $0.role > $1.role }
    }
}
