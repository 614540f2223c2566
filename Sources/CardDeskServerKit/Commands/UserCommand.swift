import ArgumentParser
import CardDeskCore
import Foundation

/// `carddesk-server user add --id 555254600106 --given Jane --family Doe --org RBQ --role "S0080:G0450:R5080@RBQ" [--role …]`
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage card holders.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a card holder with one or more roles.")

        @OptionGroup var store: StoreOptions
        @Option(help: "The 12-digit user ID.") var id: String
        @Option(help: "Given name.") var given: String
        @Option(help: "Family name.") var family: String
        @Option(help: "The employing organisation's code (ODS), the certificate subject's O.") var org: String
        @Option(help: "A role as ROLECODE@ORG, for example S0080:G0450:R5080@RBQ; repeat for several.") var role: [String] = []

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                let user = try User(
                    id: try UserID(id), givenName: given, familyName: family, organisation: org,
                    roles: try role.map { text throws(CardDeskError) in try Role(parsing: text) }
                )
                try await instance.store.addUser(user, audit: AuditEvent(
                    action: .userAdd, actor: CommandSupport.operatorActor, subject: "user:\(user.id)",
                    details: "org=\(user.organisation) roles=\(user.roles.map(\.description).joined(separator: ","))",
                    time: instance.clock.now()
                ))
                print("Added user \(user.id) (\(user.givenName) \(user.familyName), \(user.organisation)) with \(user.roles.count) role\(user.roles.count == 1 ? "" : "s").")
            }
        }
    }
}
