public import CardDeskCore

/// The national RA guidance's table (issue 13), written out cell by cell, independently of `RAPolicy`: the tests that
/// perform the table's actions over HTTP take what should happen from here, so a wrong `RAPolicy` fails them too.
public enum NationalRATable {
    public static let cells: [RAAction: [RARole: Bool]] = [
        .issueCard: [.manager: true, .agentAdvanced: true, .agent: true, .sponsor: false, .localSmartcardAdministrator: false],
        .unlockCard: [.manager: true, .agentAdvanced: true, .agent: true, .sponsor: true, .localSmartcardAdministrator: true],
        .renewDue: [.manager: true, .agentAdvanced: true, .agent: true, .sponsor: true, .localSmartcardAdministrator: true],
        .renewExpired: [.manager: true, .agentAdvanced: true, .agent: true, .sponsor: false, .localSmartcardAdministrator: false],
        .repair: [.manager: true, .agentAdvanced: true, .agent: true, .sponsor: false, .localSmartcardAdministrator: false],
        .clear: [.manager: true, .agentAdvanced: true, .agent: true, .sponsor: false, .localSmartcardAdministrator: false],
        .cancelCard: [.manager: true, .agentAdvanced: true, .agent: true, .sponsor: false, .localSmartcardAdministrator: false],
    ]

    /// Whether the table lets `role` do `action` (a cell missing from the table counts as no).
    public static func allows(_ role: RARole, _ action: RAAction) -> Bool {
        cells[action]?[role] ?? false
    }
}
