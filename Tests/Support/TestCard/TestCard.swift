import Foundation
import Smartcard
import Synchronization
import VirtualSmartcard

/// `carddesk-test-card`: the fault injection of the PC/SC tests, on the card's side of the reader, so that nothing in
/// the agent or the server can be made to fail on purpose. A virtual PIV card in vpcd's reader that counts the
/// command APDUs it answers and, at the Nth:
/// - `remove`: leaves the reader before answering (the card is pulled out while the agent waits), and exits;
/// - `kill`: answers (the card did what was asked), then SIGKILLs the process whose PID is in `--pid-file` (the
///   agent never hears the answer), and stays in the reader.
/// With no fault it only counts: `--count-file` holds the number of APDUs answered so far.
///
///     carddesk-test-card FILE [--vpcd HOST:PORT] [--fault remove|kill --at N [--pid-file PATH]] [--count-file PATH]
@main
struct TestCard {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String) -> String? {
            guard let index = arguments.firstIndex(of: name), arguments.indices.contains(index + 1) else { return nil }
            defer { arguments.removeSubrange(index...(index + 1)) }
            return arguments[index + 1]
        }
        let vpcd = option("--vpcd") ?? "127.0.0.1:35963"
        let fault = option("--fault")
        let at = option("--at").flatMap(Int.init) ?? 0
        let pidFile = option("--pid-file")
        let countFile = option("--count-file")
        guard let path = arguments.first, let (host, port) = try? VPCDConnection.address(vpcd) else {
            FileHandle.standardError.write(Data("usage: carddesk-test-card FILE [--vpcd HOST:PORT] [--fault remove|kill --at N [--pid-file PATH]] [--count-file PATH]\n".utf8))
            exit(64)
        }
        let card = FaultyCard(card: VirtualPIVCard(file: URL(fileURLWithPath: path)), fault: fault, at: at, pidFile: pidFile, countFile: countFile)
        let connection = VPCDConnection(card: card, host: host, port: port)
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler { connection.stop() }
        source.resume()
        connection.run { event in
            if case .inserted = event { FileHandle.standardOutput.write(Data("inserted\n".utf8)) }
        }
        print("removed after \(card.count) APDUs")
    }
}

final class FaultyCard: VPCDCard {
    let card: VirtualPIVCard
    let fault: String?
    let at: Int
    let pidFile: String?
    let countFile: String?
    private let answered = Mutex(0)

    init(card: VirtualPIVCard, fault: String?, at: Int, pidFile: String?, countFile: String?) {
        self.card = card
        self.fault = fault
        self.at = at
        self.pidFile = pidFile
        self.countFile = countFile
    }

    var count: Int { answered.withLock { $0 } }
    var answerToReset: [UInt8] { VirtualPIVCard.atr }
    func reset() { card.reset() }

    func answer(_ apdu: [UInt8]) -> [UInt8]? {
        let number = answered.withLock { $0 += 1; return $0 }
        if fault == "remove", number == at { return nil }
        let response = card.respond(to: apdu)
        if let countFile { try? String(number).write(toFile: countFile, atomically: true, encoding: .utf8) }
        if fault == "kill", number == at, let pidFile {
            // The agent writes nothing itself: the test wrote its PID when it started it.
            var pid: Int32?
            for _ in 0..<200 where pid == nil {
                pid = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                if pid == nil { usleep(10_000) }
            }
            if let pid { kill(pid, SIGKILL) }
        }
        return response
    }
}
