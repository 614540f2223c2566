public import CardDeskCore
public import CardDeskStore

/// Granting roles from the RA console: job roles by RA Agents and above, RA roles only below the granter's own, only
/// at the organisation the granter's RA role covers, never to oneself.
extension RAConsole {
    public func grantRole(_ desk: Desk, userID text: String, code: String) async throws -> Role {
        guard let id = try? UserID(text), let user = try await directory.user(id: id) else {
            throw CardDeskError(.unknownUser, "No person with user ID \(text.prefix(20)) is registered.")
        }
        let role = try Role(code: code.trimmingCharacters(in: .whitespaces), organisation: desk.organisation)
        let raRole = codes.raRole(code: role.code)
        var refusal: String?
        if desk.actor == id {
            refusal = "Nobody grants roles to themselves: ask another member of your Registration Authority."
        } else if !RAPolicy.covers(desk.organisation, user) {
            refusal = "Your \(desk.role) role covers \(desk.organisation); \(user.givenName) \(user.familyName) works for \(user.organisation). Ask their own Registration Authority."
        } else if !RAPolicy.mayGrant(desk.role, raRole: raRole) {
            refusal = raRole.map { "\(desk.role.withArticle) may grant only RA roles below their own; \($0) is not." }
                ?? "\(desk.role.withArticle) may not grant roles: ask an RA Agent or your RA Manager."
        }
        if let refusal {
            try await directory.appendAudit(AuditEvent(
                action: .raAction, actor: "user:\(desk.actor)", subject: "user:\(id)", outcome: .failure,
                details: "grant refused: \(role) by \(desk.role) for \(desk.organisation)", time: clock.now()
            ))
            throw CardDeskError(.notAuthorised, refusal)
        }
        try await directory.addRole(role, to: id, audit: AuditEvent(
            action: .raAction, actor: "user:\(desk.actor)", subject: "user:\(id)",
            details: "role granted: \(role)\(raRole.map { " (\($0))" } ?? "") by \(desk.role) for \(desk.organisation)", time: clock.now()
        ))
        return role
    }
}
