import ArgumentParser
import CardAgent

/// The executable holds nothing but wiring: the commands live in CardAgent.
@main
struct CardDesk: AsyncParsableCommand {
    static let configuration = CardDeskCommand.configuration
}
