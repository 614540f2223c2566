public import ArgumentParser

/// `carddesk-server`: the server, and the operator commands on its data directory.
public struct ServerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "carddesk-server",
        abstract: "CardDesk: smartcard certificate self-service, certificate authority, CRL and OCSP.",
        discussion: "With no command, serves on 127.0.0.1:8080 with the embedded defaults (SQLite and a PKI in ./.carddesk).",
        subcommands: [ServeCommand.self, UserCommand.self, CardCommand.self, CACommand.self, AuditCommand.self],
        defaultSubcommand: ServeCommand.self
    )

    public init() {}
}
