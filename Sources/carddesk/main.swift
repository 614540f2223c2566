import ArgumentParser

/// `carddesk`: the workstation agent and card command line. Card commands (status, renew, unlock, agent)
/// arrive with the virtual smartcard; today it only reports its version.
struct CardDeskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carddesk",
        abstract: "CardDesk workstation agent and smartcard command line.",
        version: "0.1.0"
    )
}

CardDeskCommand.main()
