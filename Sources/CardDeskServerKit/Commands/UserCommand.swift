import ArgumentParser
import CardDeskCore
import Foundation

/// `carddesk-server user add --id 555254600106 --given Jane --family Doe --org RBQ --role "S0080:G0450:R5080@RBQ" [--role …]
///  [--email jane.doe@nhs.net] [--mobile 07700900123]`
/// `carddesk-server user update --id 555254600106 [--email ADDRESS] [--mobile NUMBER]` (an empty value removes it)
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage card holders.", subcommands: [Add.self, Update.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a card holder with one or more roles.")

        @OptionGroup var store: StoreOptions
        @Option(help: "The 12-digit user ID.") var id: String
        @Option(help: "Given name.") var given: String
        @Option(help: "Family name.") var family: String
        @Option(help: "The employing organisation's code (ODS), the certificate subject's O.") var org: String
        @Option(help: "A role as ROLECODE@ORG, for example S0080:G0450:R5080@RBQ; repeat for several. An RA role is its code at the organisation it covers, for example RAAGENT@RBQ (codes: settings ra.role.*).") var role: [String] = []
        @Option(help: "Email address for self-service unlock codes (on an allowed domain).") var email: String?
        @Option(help: "Mobile number for self-service unlock codes.") var mobile: String?

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                // Check the addresses first, so that a refused one leaves no user behind.
                if let email { _ = try ContactAddress.email(email, allowedDomains: instance.settings.allowedEmailDomains) }
                if let mobile { _ = try ContactAddress.mobile(mobile) }
                let user = try User(
                    id: try UserID(id), givenName: given, familyName: family, organisation: org,
                    roles: try role.map { text throws(CardDeskError) in try Role(parsing: text) }
                )
                try await instance.store.addUser(user, audit: AuditEvent(
                    action: .userAdd, actor: CommandSupport.operatorActor, subject: "user:\(user.id)",
                    details: "org=\(user.organisation) roles=\(user.roles.map(\.description).joined(separator: ","))",
                    time: instance.clock.now()
                ))
                if email != nil || mobile != nil {
                    _ = try await instance.unlock.setContacts(userID: user.id, email: email, mobile: mobile, actor: CommandSupport.operatorActor)
                }
                print("Added user \(user.id) (\(user.givenName) \(user.familyName), \(user.organisation)) with \(user.roles.count) role\(user.roles.count == 1 ? "" : "s").")
                for (raRole, organisation) in instance.settings.raRoleCodes.raRoles(of: user) {
                    print("  \(raRole) for \(organisation)")
                }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a card holder's contact details for self-service unlock.")

        @OptionGroup var store: StoreOptions
        @Option(help: "The 12-digit user ID.") var id: String
        @Option(help: "Email address for unlock codes (an empty value removes it).") var email: String?
        @Option(help: "Mobile number for unlock codes (an empty value removes it).") var mobile: String?

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                guard email != nil || mobile != nil else {
                    throw CardDeskError(.invalidInput, "Nothing to change: give --email and/or --mobile.")
                }
                let contacts = try await instance.unlock.setContacts(userID: try UserID(id), email: email, mobile: mobile, actor: CommandSupport.operatorActor)
                let shown = contacts.usable.map { "\($0.0.spoken) \($0.1)" }
                print("Updated user \(id): " + (shown.isEmpty ? "no contact details." : shown.joined(separator: ", ") + "."))
            }
        }
    }
}
