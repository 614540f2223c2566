import ArgumentParser
import CardDeskCore
import CardAgent

/// The executable holds nothing but wiring: the commands live in CardAgent.
@main
struct CardDesk: AsyncParsableCommand {
    static let configuration = CardDeskCommand.configuration

    /// Files this process creates are its user's alone (card files, keys, the database), before anything runs.
    static func main() async {
        SecretFile.restrictProcessUmask()
        do {
            var command = try parseAsRoot(CardDeskCommand.normalised(Array(CommandLine.arguments.dropFirst())))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
