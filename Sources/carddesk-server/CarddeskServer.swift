import ArgumentParser
import CardDeskCore
import CardDeskServerKit

/// The executable holds nothing but wiring: the command tree lives in CardDeskServerKit.
@main
struct CarddeskServer: AsyncParsableCommand {
    static let configuration = ServerCommand.configuration

    /// Files this process creates are its user's alone (card files, keys, the database), before anything runs.
    static func main() async {
        SecretFile.restrictProcessUmask()
        do {
            var command = try parseAsRoot()
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
