import CardDeskCore
import Foundation
import RegistrationAuthority

// The console's page models; their views are `Pages/Templates/ra*.mustache`.

/// `ra-role.mustache`: the role in use is not an RA role.
struct RARoleChoicePage {
    struct Choice {
        let number: Int
        let name: String
    }

    let frame: PageFrame
    let reason: String
    let choices: [Choice]
    let hasChoices: Bool

    init(frame: PageFrame, reason: String, choices: [Choice]) {
        self.frame = frame
        self.reason = reason
        self.choices = choices
        hasChoices = !choices.isEmpty
    }
}

/// `ra.mustache`: the console's start: who is working in which RA role, and the search.
struct RAConsolePage {
    struct Person {
        let userID: String
        let name: String
        let organisation: String
    }

    let frame: PageFrame
    let desk: String
    let query: String
    let searched: Bool
    let people: [Person]
    let nobody: Bool

    init(frame: PageFrame, desk: RAConsole.Desk, query: String?, people: [User]?) {
        self.frame = frame
        self.desk = desk.description
        self.query = query ?? ""
        searched = query != nil
        self.people = (people ?? []).map { Person(userID: $0.id.rawValue, name: "\($0.familyName), \($0.givenName)", organisation: $0.organisation) }
        nobody = searched && self.people.isEmpty
    }
}

/// `ra-person.mustache`: one person's record.
struct RAPersonPage {
    struct RoleRow {
        let role: String
        let raRole: String?
    }

    struct CardRow {
        let serial: String
        let status: String
        let issued: String
        /// The form to cancel it, when the card is in use and the RA may cancel it.
        let cancellable: Bool
    }

    struct ReasonChoice {
        let value: String
        let name: String
    }

    struct CertificateRow {
        let profile: String
        let serial: String
        let expires: String
        let status: String
    }

    struct ActionRow {
        let action: String
        let allowed: Bool
        let reason: String?
    }

    let frame: PageFrame
    let desk: String
    let userID: String
    let name: String
    let organisation: String
    let status: String
    let roles: [RoleRow]
    let cards: [CardRow]
    let certificates: [CertificateRow]
    let email: String
    let mobile: String
    let actions: [ActionRow]
    let history: [AuditRow]
    let reasons: [ReasonChoice]
    let done: String?
    /// The role-granting form: shown when the desk may grant something here; the RA roles it may grant.
    let mayGrant: Bool
    let grantableRARoles: String
    let organisationCovered: String
    // Stored, not computed: the templates see stored properties only (Mirror).
    let hasCards: Bool
    let hasCertificates: Bool
    /// The work on the card in the RA's second reader: shown when the desk may renew or unlock this person's cards
    /// in use (`deskCards`, their serials separated by spaces, which the page's script compares with the reader's),
    /// or issue them a blank card.
    let deskWork: Bool
    let mayRenew: Bool
    let mayUnlock: Bool
    let mayIssue: Bool
    let mayRepair: Bool
    let mayClear: Bool
    let deskCards: String

    init(frame: PageFrame, desk: RAConsole.Desk, record: RAConsole.PersonRecord, codes: RARoleCodes, done: String? = nil) {
        self.frame = frame
        self.desk = desk.description
        let user = record.user
        userID = user.id.rawValue
        name = "\(user.givenName) \(user.familyName)"
        organisation = user.organisation
        status = user.status.rawValue
        roles = user.roles.map { RoleRow(role: $0.description, raRole: codes.raRole(code: $0.code)?.description) }
        let mayCancel = record.allowed[.cancelCard] == .allowed
        cards = record.cards.map {
            CardRow(serial: $0.serial, status: $0.status.rawValue, issued: $0.createdAt.dateDescription, cancellable: mayCancel && $0.status != .cancelled)
        }
        reasons = RAConsole.CancelReason.allCases.map { ReasonChoice(value: $0.rawValue, name: $0.description.prefix(1).uppercased() + $0.description.dropFirst()) }
        self.done = done
        let grantable = RARole.allCases.filter { RAPolicy.mayGrant(desk.role, raRole: $0) }
        mayGrant = RAConsole.grantRefusal(desk, to: user, raRole: nil) == nil
        grantableRARoles = grantable.map { "\(codes.code(for: $0)) (\($0))" }.joined(separator: ", ")
        organisationCovered = desk.organisation
        certificates = record.certificates.map {
            CertificateRow(
                profile: $0.profile.rawValue, serial: $0.serial.hex, expires: $0.notAfter.dateDescription,
                status: $0.status == .good ? ($0.notAfter <= record.readAt ? "expired" : "valid") : "revoked"
            )
        }
        hasCards = !cards.isEmpty
        hasCertificates = !certificates.isEmpty
        mayRenew = record.allowed[.renewDue] == .allowed || record.allowed[.renewExpired] == .allowed
        mayUnlock = record.allowed[.unlockCard] == .allowed
        deskCards = record.cards.filter { $0.status == .active }.map(\.serial).joined(separator: " ")
        mayIssue = record.allowed[.issueCard] == .allowed
        mayRepair = record.allowed[.repair] == .allowed
        mayClear = record.allowed[.clear] == .allowed
        deskWork = mayIssue || ((mayRenew || mayUnlock || mayRepair || mayClear) && !deskCards.isEmpty)
        email = record.contacts?.email ?? "none"
        mobile = record.contacts?.mobile ?? "none"
        actions = RAAction.allCases.map { action in
            switch record.allowed[action] ?? .refused("") {
            case .allowed: ActionRow(action: action.description, allowed: true, reason: nil)
            case .refused(let reason): ActionRow(action: action.description, allowed: false, reason: reason)
            }
        }
        history = record.history.map(AuditRow.init)
    }
}

/// `ra-problem.mustache`: why the console refused.
struct RAProblemPage {
    let frame: PageFrame
    let message: String
}
