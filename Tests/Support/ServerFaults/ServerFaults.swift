import CardDeskServerKit
import Foundation
import Logging
import RegistrationAuthority
import Synchronization

/// `carddesk-server-faults --data DIR --kill-at NAME:before|after:N`: the CardDesk server (as `serve --port 0`), which
/// kills itself (SIGKILL, as a power cut would) just before or just after the Nth renewal commit named NAME (`save`,
/// `issue`, `revoke`). The crash tests' only way to stop a server at a commit: nothing in the production server can.
@main
struct ServerFaults {
    static func main() async throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String) -> String? {
            guard let index = arguments.firstIndex(of: name), arguments.indices.contains(index + 1) else { return nil }
            defer { arguments.removeSubrange(index...(index + 1)) }
            return arguments[index + 1]
        }
        guard let data = option("--data"), let point = option("--kill-at").map({ $0.split(separator: ":").map(String.init) }), point.count == 3,
              let occurrence = Int(point[2]) else {
            FileHandle.standardError.write(Data("usage: carddesk-server-faults --data DIR --kill-at NAME:before|after:N\n".utf8))
            exit(64)
        }
        let settings = try await ServerSettings.resolve(flags: ["data": data, "http.port": "0", "rate.limit.percent": "0"], environment: ProcessInfo.processInfo.environment)
        let logger = Logger(label: "carddesk-server-faults")
        let instance = try await CardDeskInstance.open(settings, logger: logger, serving: true, commitWatch: KillAt(name: point[0], after: point[1] == "after", occurrence: occurrence))
        try await CardDeskServer.run(instance, logger: logger)
    }
}

final class KillAt: RenewalCommitWatch {
    let name: String
    let after: Bool
    let occurrence: Int
    private let passes = Mutex(0)

    init(name: String, after: Bool, occurrence: Int) {
        self.name = name
        self.after = after
        self.occurrence = occurrence
    }

    func willCommit(_ name: String) { pass(name, after: false) }
    func didCommit(_ name: String) { pass(name, after: true) }

    private func pass(_ name: String, after: Bool) {
        guard name == self.name, after == self.after else { return }
        if passes.withLock({ $0 += 1; return $0 }) == occurrence { kill(getpid(), SIGKILL) }
    }
}
