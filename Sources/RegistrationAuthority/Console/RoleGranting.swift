public import CardDeskCore
public import CardDeskStore

/// Granting roles from the RA console: job roles by RA Agents and above, RA roles only below the granter's own, only
/// at the organisation the granter's RA role covers, never to oneself.
extension RAConsole {
    public func grantRole(_ desk: Desk, userID text: String, code: String) async throws -> Role {
        let user = try await subject(text)
        let id = user.id
        let role = try Role(code: code.trimmingCharacters(in: .whitespaces), organisation: desk.organisation)
        let raRole = codes.raRole(code: role.code)
        if let why = Self.grantRefusal(desk, to: user, raRole: raRole) {
            throw try await refusal(desk, subject: "user:\(id)", refused: "grant of \(role)", reason: why)
        }
        try await directory.addRole(role, to: id, audit: AuditEvent(
            action: .raAction, actor: "user:\(desk.actor)", subject: "user:\(id)",
            details: "role granted: \(role)\(raRole.map { " (\($0))" } ?? "") by \(desk)", time: clock.now()
        ))
        return role
    }

    /// Why the desk may not grant `raRole` (nil: a job role) to `user`; nil when it may.
    public static func grantRefusal(_ desk: Desk, to user: User, raRole: RARole?) -> String? {
        if desk.actor == user.id { return "Nobody grants roles to themselves: ask another member of your Registration Authority." }
        if case .refused(let reason) = RAPolicy.coverage(role: desk.role, organisation: desk.organisation, subject: user) { return reason }
        guard RAPolicy.mayGrant(desk.role, raRole: raRole) else {
            return raRole.map { "\(desk.role.withArticle) may grant only RA roles below their own; \($0) is not." }
                ?? "\(desk.role.withArticle) may not grant roles: ask an RA Agent or your RA Manager."
        }
        return nil
    }
}
