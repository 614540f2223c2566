import CardDeskCore
import CardDeskTestSupport
import Testing

@Suite("RA roles and who may do what")
struct RAPolicyTests {
    /// The national RA guidance's table, written out cell by cell (issue 13; shared with the HTTP tests).
    static let table = NationalRATable.cells

    static func person(_ id: String, organisation: String = "RBQ", roles: [String] = ["R8000@RBQ"]) throws -> User {
        try User(id: try UserID(id), givenName: "Sam", familyName: "Holder", organisation: organisation, roles: roles.map { try Role(parsing: $0) })
    }

    @Test("Every cell of the table: allowed actions are allowed, the others refused with the role and action named")
    func everyCell() throws {
        let subject = try Self.person("555254600200")
        let actor = try UserID("555254600100")
        #expect(Self.table.count == RAAction.allCases.count)
        for action in RAAction.allCases {
            for role in RARole.allCases {
                let expected = try #require(Self.table[action]?[role])
                #expect(RAPolicy.allows(role, action) == expected, "\(role) \(action)")
                let verdict = RAPolicy.decide(actor: actor, role: role, organisation: "RBQ", action: action, subject: subject)
                if expected {
                    #expect(verdict == .allowed, "\(role) \(action)")
                } else {
                    #expect(verdict == .refused("\(role.withArticle) may not \(action): ask an RA Agent or your RA Manager."), "\(role) \(action)")
                }
            }
        }
    }

    @Test("Nobody acts on their own card, and RA staff act only in the organisations their role covers")
    func ownCardAndOrganisation() throws {
        let own = try Self.person("555254600100")
        for role in RARole.allCases {
            guard case .refused(let reason) = RAPolicy.decide(actor: own.id, role: role, organisation: "RBQ", action: .unlockCard, subject: own) else {
                Issue.record("\(role) acted on their own card")
                continue
            }
            #expect(reason.contains("own card"))
        }
        let elsewhere = try Self.person("555254600300", organisation: "RXH", roles: ["R8000@RXH"])
        let verdict = RAPolicy.decide(actor: own.id, role: .manager, organisation: "RBQ", action: .renewDue, subject: elsewhere)
        #expect(verdict == .refused("Your RA Manager role covers RBQ; Sam Holder works for RXH. Ask their own Registration Authority."))
        // Someone employed elsewhere who holds a role at the RA's organisation is in it.
        let visiting = try Self.person("555254600400", organisation: "RXH", roles: ["R8000@RXH", "R8000@RBQ"])
        #expect(RAPolicy.decide(actor: own.id, role: .agent, organisation: "RBQ", action: .renewDue, subject: visiting) == .allowed)
    }

    @Test("RA roles are granted only below the granter's own, and job roles only by RA Agents and above")
    func granting() {
        #expect(RAPolicy.mayGrant(.manager, raRole: .agentAdvanced))
        #expect(RAPolicy.mayGrant(.manager, raRole: .localSmartcardAdministrator))
        #expect(!RAPolicy.mayGrant(.manager, raRole: .manager))
        #expect(RAPolicy.mayGrant(.agentAdvanced, raRole: .agent))
        #expect(!RAPolicy.mayGrant(.agent, raRole: .agentAdvanced))
        #expect(!RAPolicy.mayGrant(.agent, raRole: .agent))
        #expect(RAPolicy.mayGrant(.agent, raRole: .sponsor))
        #expect(!RAPolicy.mayGrant(.sponsor, raRole: .localSmartcardAdministrator), "a sponsor issues nothing")
        #expect(RAPolicy.mayGrant(.agent, raRole: nil))
        #expect(!RAPolicy.mayGrant(.localSmartcardAdministrator, raRole: nil))
        #expect(RARole.allCases.sorted(by: >) == [.manager, .agentAdvanced, .agent, .sponsor, .localSmartcardAdministrator])
    }

    @Test("RA role codes: defaults, configured codes, duplicates refused, a user's RA roles found highest first")
    func codes() throws {
        let defaults = RARoleCodes.defaults
        #expect(defaults.raRole(code: "RAMANAGER") == .manager)
        #expect(defaults.raRole(code: "R8000") == nil)
        let configured = try RARoleCodes([.sponsor: "S9000:G9000"])
        #expect(configured.code(for: .sponsor) == "S9000:G9000")
        #expect(configured.raRole(code: "RASPONSOR") == nil)
        #expect(throws: CardDeskError.self) { try RARoleCodes([.sponsor: "RAAGENT"]) }
        #expect(throws: CardDeskError.self) { try RARoleCodes([.agent: "not a code!"]) }
        let user = try Self.person("555254600500", roles: ["R8000@RBQ", "RASPONSOR@RBQ", "RAMANAGER@RXH"])
        let held = defaults.raRoles(of: user)
        #expect(held.map(\.role) == [.manager, .sponsor])
        #expect(held.map(\.organisation) == ["RXH", "RBQ"])
    }
}
