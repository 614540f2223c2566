import ArgumentParser
import CardDeskServerKit

/// The executable holds nothing but wiring: the command tree lives in CardDeskServerKit.
@main
struct CarddeskServer: AsyncParsableCommand {
    static let configuration = ServerCommand.configuration
}
