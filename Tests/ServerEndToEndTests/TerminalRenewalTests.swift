import Foundation
import Testing

/// Self-renewal from the terminal with the real binaries: carddesk-server (card issue, serve) and carddesk.
@Suite("Terminal renewal end to end", .serialized)
struct TerminalRenewalTests {
    struct Setup {
        let folder: URL
        let data: URL
        let server: ServerProcess

        init(_ name: String, serverArguments: [String] = []) throws {
            folder = try Tools.temporaryFolder(name)
            data = folder.appendingPathComponent("data")
            try OperatorCommandTests.addUser(data)
            server = try ServerProcess(data: data, extraArguments: serverArguments)
        }

        /// A card for a card holder of its own (so "one valid authentication certificate per user" can be checked).
        func issueCard(_ name: String, days: Int? = 30, algorithm: String = "p256", mobile: String? = nil) throws -> URL {
            let file = folder.appendingPathComponent("\(name).json")
            // A stable ID from the name (FNV-1a), so a failure names the same user on every run.
            let hash = name.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
            let user = String(format: "5552%08d", hash % 100_000_000)
            let added = try Tools.server(["user", "add", "--id", user, "--given", "Card", "--family", "Holder", "--org", "RBQ", "--role", "R8000@RBQ"]
                                         + (mobile.map { ["--mobile", $0] } ?? []), data: data)
            guard added.ok else { throw ToolError("user add: \(added.stderr)") }
            var arguments = ["card", "issue", "--user", user, "--virtual", file.path,
                             "--key-algorithm", algorithm, "--public-url", server.url]
            if let days { arguments += ["--expires-in-days", String(days)] }
            let result = try Tools.server(arguments, data: data, input: "123456\n")
            guard result.ok else { throw ToolError("card issue: \(result.stderr)") }
            return file
        }

        func carddesk(_ arguments: [String], card: URL, passcode: String? = nil, environment: [String: String] = [:]) throws -> Tools.Result {
            try Tools.run(Tools.clientBinary, arguments + ["--card", card.path, "--server", server.url], environment: environment, input: passcode.map { $0 + "\n" })
        }

        /// The serials the card holds, from `carddesk status`.
        func serialsOnCard(_ card: URL) throws -> [String] {
            let status = try carddesk(["status"], card: card)
            return status.stdout.split(separator: "\n").compactMap { line in
                guard let range = line.range(of: "serial ") else { return nil }
                return String(line[range.upperBound...].prefix { $0.isHexDigit })
            }
        }

        var database: URL { data.appendingPathComponent("carddesk.sqlite") }

        /// After any run: the card holds one working set (both certificates good), its holder has exactly one valid
        /// certificate of each profile, and the audit chain verifies.
        func expectConsistent(_ card: URL, _ context: String) throws {
            let serials = try serialsOnCard(card)
            #expect(serials.count == 2, "\(context): the card shows two certificates")
            for serial in serials {
                #expect(try Tools.sqlite(database, "SELECT status FROM certificates WHERE serial = '\(serial)'") == "good", "\(context): \(serial) is valid")
            }
            let cardSerial = try Tools.run(Tools.clientBinary, ["status", "--card", card.path, "--server", server.url]).stdout
                .split(separator: "\n").first.map { String($0.dropFirst("Card ".count)) } ?? ""
            let user = try Tools.sqlite(database, "SELECT user_id FROM cards WHERE serial = '\(cardSerial)'")
            for profile in ["authentication", "signing"] {
                let good = try Tools.sqlite(database, "SELECT count(*) FROM certificates WHERE user_id = '\(user)' AND profile = '\(profile)' AND status = 'good'")
                #expect(good == "1", "\(context): user \(user) has one valid \(profile) certificate, not \(good)")
            }
            let verify = try Tools.server(["audit", "verify"], data: data)
            #expect(verify.ok, "\(context): \(verify.stderr)")
        }
    }

    @Test("status, a wrong passcode, then a renewal with progress; OCSP: old revoked (superseded), new good")
    func renewal() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let setup = try Setup("renew")
            let card = try setup.issueCard("card", algorithm: "rsa2048")
            let status = try setup.carddesk(["status"], card: card)
            #expect(status.ok, "\(status.stderr)")
            #expect(status.stdout.contains("Passcode tries left: 3 of 3"))
            #expect(status.stdout.contains("(30 days)"))
            #expect(status.stdout.contains("Subject") == false)
            #expect(status.stdout.contains("_Card_Holder,OU=People,O=RBQ"))
            #expect(status.stdout.contains("Renewal: available."))
            let before = try setup.serialsOnCard(card)

            let wrong = try setup.carddesk(["renew"], card: card, passcode: "000000")
            #expect(wrong.status == 80)
            #expect(wrong.stderr == "The passcode you entered is not valid. You have 2 remaining tries\n")

            let renewed = try setup.carddesk(["renew"], card: card, passcode: "123456")
            #expect(renewed.ok, "\(renewed.stderr)")
            for label in ["Authentication certificate", "Signing certificate"] {
                let lines = renewed.stdout.split(separator: "\n").filter { $0.hasPrefix(label + ":") }.map { String($0.dropFirst(label.count + 2)) }
                #expect(lines == ["Pending", "Generating key", "Issuing", "Writing", "Done"], "\(label): \(lines)")
            }
            #expect(renewed.stdout.contains("Success: certificate renewed for smartcard"))
            let after = try setup.serialsOnCard(card)
            #expect(Set(after).isDisjoint(with: before))

            let pki = setup.data.appendingPathComponent("pki")
            for (index, profile) in ["authentication", "signing"].enumerated() {
                func ocsp(_ serial: String) throws -> String {
                    try Tools.run("openssl", ["ocsp", "-issuer", pki.appendingPathComponent("\(profile)-ca.pem").path, "-serial", "0x\(serial)",
                                              "-url", "\(setup.server.url)/ocsp", "-CAfile", pki.appendingPathComponent("root.pem").path]).stdout
                }
                let old = try ocsp(before[index])
                #expect(old.contains(": revoked") && old.contains("Reason: superseded"), "old \(profile): \(old)")
                #expect(try ocsp(after[index]).contains(": good"), "new \(profile)")
            }
            try setup.expectConsistent(card, "after renewal")
            let again = try setup.carddesk(["status"], card: card)
            #expect(again.stdout.contains("(1095 days)"))
            #expect(again.stdout.contains("Renewal: not available until"))
        }
    }

    @Test("The card in a reader folder: insert, status and renew by --reader, remove, and an empty reader explained")
    func readerFolder() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let setup = try Setup("reader")
            let card = try setup.issueCard("card")
            let reader = setup.folder.appendingPathComponent("reader")
            try FileManager.default.createDirectory(at: reader, withIntermediateDirectories: true)
            let insert = try Tools.run(Tools.clientBinary, ["card", "insert", card.path, "--reader", reader.path])
            #expect(insert.ok, "\(insert.stderr)")
            func viaReader(_ command: String, passcode: String? = nil) throws -> Tools.Result {
                try Tools.run(Tools.clientBinary, [command, "--reader", reader.path, "--server", setup.server.url], input: passcode.map { $0 + "\n" })
            }
            #expect(try viaReader("status").stdout.contains("Renewal: available."))
            let renewed = try viaReader("renew", passcode: "123456")
            #expect(renewed.stdout.contains("Success: certificate renewed for smartcard"), "\(renewed.stderr)")
            let remove = try Tools.run(Tools.clientBinary, ["card", "remove", "--reader", reader.path])
            #expect(remove.ok, "\(remove.stderr)")
            #expect(FileManager.default.fileExists(atPath: card.path), "the card is back where it came from")
            let empty = try viaReader("status")
            #expect(empty.status == 83)
            #expect(empty.stderr.contains("There is no smartcard in the reader"))
            let both = try Tools.run(Tools.clientBinary, ["status", "--reader", reader.path, "--card", card.path])
            #expect(!both.ok)
            #expect(both.stderr.contains("one of them"))
            try setup.expectConsistent(card, "after renewal through the reader")
        }
    }

    @Test("Outside the window renewal is refused with the opening date; three wrong passcodes lock the card for every later run")
    func refusals() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let setup = try Setup("refuse-renew")
            let card = try setup.issueCard("card", days: nil)
            let refused = try setup.carddesk(["renew"], card: card, passcode: "123456")
            #expect(refused.status == 87)
            let opens = Date().addingTimeInterval(Double(1095 - 90) * 86_400)
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let parts = calendar.dateComponents([.year, .month, .day], from: opens)
            let date = String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
            #expect(refused.stderr.contains("Renewal is not available yet: it opens on \(date)"), "\(refused.stderr)")

            let short = try setup.issueCard("short")
            for (attempt, left) in [(1, 2), (2, 1)] {
                let wrong = try setup.carddesk(["renew"], card: short, passcode: "99999\(attempt)")
                #expect(wrong.status == 80)
                #expect(wrong.stderr.contains("You have \(left) remaining tries"))
            }
            let third = try setup.carddesk(["renew"], card: short, passcode: "999993")
            #expect(third.status == 81)
            #expect(third.stderr.contains("locked") && third.stderr.contains("unlock"))
            let right = try setup.carddesk(["renew"], card: short, passcode: "123456")
            #expect(right.status == 81, "a locked card stays locked in a new process")
            #expect(try setup.carddesk(["status"], card: short).stdout.contains("Passcode: locked"))
        }
    }

    /// The server's commits in one renewal: the start (with the card's administration: the virtual card says its
    /// management-key algorithm), then per key pair the issuance and the revocation, each with its step.
    static let serverCrashPoints: [String] = {
        let counts = ["save": 1, "issue": 2, "revoke": 2]
        return counts.sorted { $0.key < $1.key }.flatMap { point, count in
            (1...count).flatMap { occurrence in ["before", "after"].map { "\(point):\($0):\(occurrence)" } }
        }
    }()

    @Test("The server killed (SIGKILL) before and after every commit of a renewal: after a restart, renew completes it")
    func serverKilledAtEveryStep() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            var setup = try Setup("kill-server")
            for point in Self.serverCrashPoints {
                let card = try setup.issueCard("card-\(point.replacingOccurrences(of: ":", with: "-"))")
                setup.server.signal(SIGTERM)
                _ = setup.server.waitForExit()
                let crashing = try ServerProcess(data: setup.data, faultyAt: point)
                let first = try Tools.run(Tools.clientBinary, ["renew", "--card", card.path, "--server", crashing.url], input: "123456\n")
                #expect(!first.ok, "\(point): the server must have died mid-renewal")
                #expect(crashing.waitForExit(seconds: 5) != nil, "\(point): the server is gone")
                setup = try Setup(resuming: setup)
                let second = try setup.carddesk(["renew"], card: card, passcode: "123456")
                #expect(second.ok, "\(point): \(second.stderr)")
                #expect(second.stdout.contains("Success: certificate renewed for smartcard"), "\(point)")
                try setup.expectConsistent(card, "server killed at \(point)")
            }
        }
    }

    @Test("The agent or the server killed (SIGKILL) at random moments: running renew again completes it")
    func killedMidway() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            var setup = try Setup("kill-renew")
            var generator = SystemRandomNumberGenerator()
            // How long a whole run takes here (start to exit): the kills fall inside it, wherever the run's speed is.
            let timed = try setup.issueCard("timed")
            let started = Date()
            #expect(try setup.carddesk(["renew"], card: timed, passcode: "123456").ok)
            let whole = Date().timeIntervalSince(started)
            var interrupted = 0
            for round in 0..<12 {
                let card = try setup.issueCard("card-\(round)")
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Tools.clientBinary)
                process.arguments = ["renew", "--card", card.path, "--server", setup.server.url]
                let input = setup.folder.appendingPathComponent("passcode.txt")
                try "123456\n".write(to: input, atomically: true, encoding: .utf8)
                process.standardInput = try FileHandle(forReadingFrom: input)
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                Thread.sleep(forTimeInterval: whole * Double.random(in: 0.05...0.9, using: &generator))
                if round % 2 == 0 {
                    kill(process.processIdentifier, SIGKILL)
                    process.waitUntilExit()
                } else {
                    // Kill the server instead, and start a new one on the same store.
                    setup.server.signal(SIGKILL)
                    _ = setup.server.waitForExit()
                    process.waitUntilExit()
                    setup = try Setup(resuming: setup)
                }
                let finished = process.terminationReason == .exit && process.terminationStatus == 0
                let again = try setup.carddesk(["renew"], card: card, passcode: "123456")
                if !finished { interrupted += 1 }
                // Whether the first run was cut short or had just finished, running it again ends in success.
                #expect(again.ok, "round \(round): \(again.stderr)")
                #expect(again.stdout.contains("Success: certificate renewed for smartcard"), "round \(round)")
                try setup.expectConsistent(card, "round \(round)")
            }
            #expect(interrupted >= 3, "some renewals must really have been interrupted (\(interrupted) of 12)")
        }
    }
}

extension TerminalRenewalTests {
    /// Group commit (issue 12): many renewals at once share commits; the server is SIGKILLed while their batches run.
    @Test("Renewals at once, the server SIGKILLed in the middle of their batched commits: every acknowledged renewal is stored, nothing is half-written")
    func killedDuringGroupCommit() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            var setup = try Setup("kill-batch")
            var generator = SystemRandomNumberGenerator()
            var interrupted = 0, acknowledged = 0
            for round in 0..<2 {
                let cards = try (0..<20).map { try setup.issueCard("batch-\(round)-\($0)") }
                let input = setup.folder.appendingPathComponent("passcode.txt")
                try "123456\n".write(to: input, atomically: true, encoding: .utf8)
                func launch(_ card: URL) throws -> Process {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: Tools.clientBinary)
                    process.arguments = ["renew", "--card", card.path, "--server", setup.server.url]
                    process.standardInput = try FileHandle(forReadingFrom: input)
                    process.standardOutput = FileHandle.nullDevice
                    process.standardError = FileHandle.nullDevice
                    try process.run()
                    return process
                }
                // A first wave of 10 at once; once one of them is acknowledged (so that there is one to look for), a
                // second wave of 10 starts and the server is killed while it runs. On a fast machine the first wave can
                // finish in one batch, so the second wave is what makes sure the kill lands mid-renewal.
                var processes = try cards[..<10].map(launch)
                let deadline = Date().addingTimeInterval(30)
                while Date() < deadline, !processes.contains(where: { !$0.isRunning && $0.terminationStatus == 0 }) {
                    Thread.sleep(forTimeInterval: 0.01)
                }
                processes += try cards[10...].map(launch)
                Thread.sleep(forTimeInterval: Double.random(in: 0.15...0.4, using: &generator))
                setup.server.signal(SIGKILL)
                _ = setup.server.waitForExit()
                for process in processes { process.waitUntilExit() }
                setup = try Setup(resuming: setup)

                // Acknowledged: `renew` said it was done, so every write it waited for must be stored, before anything
                // runs again.
                for (card, process) in zip(cards, processes) where process.terminationStatus == 0 {
                    acknowledged += 1
                    try setup.expectConsistent(card, "round \(round): acknowledged renewal of \(card.lastPathComponent)")
                }
                // Nothing half-written: every stored certificate has its issuance entry and every revocation its own.
                let database = setup.database
                #expect(try Tools.sqlite(database, "SELECT count(*) FROM audit_events WHERE action = 'certificate.issue' AND subject LIKE 'user:%'")
                        == Tools.sqlite(database, "SELECT count(*) FROM certificates"), "round \(round)")
                #expect(try Tools.sqlite(database, "SELECT count(*) FROM audit_events WHERE action = 'certificate.revoke'")
                        == Tools.sqlite(database, "SELECT count(*) FROM certificates WHERE status = 'revoked'"), "round \(round)")
                // The others finish by running renew again.
                for (card, process) in zip(cards, processes) where process.terminationStatus != 0 {
                    interrupted += 1
                    let again = try setup.carddesk(["renew"], card: card, passcode: "123456")
                    #expect(again.ok, "round \(round) \(card.lastPathComponent): \(again.stderr)")
                    try setup.expectConsistent(card, "round \(round): \(card.lastPathComponent) renewed again")
                }
            }
            #expect(interrupted >= 2, "the kill must have caught renewals mid-way (\(interrupted) of 40)")
            #expect(acknowledged + interrupted == 40)
            #expect(acknowledged >= 2, "each round had an acknowledged renewal to check")
            print("group commit kill test: \(acknowledged) renewals acknowledged before the kill, \(interrupted) interrupted")
        }
    }
}

extension TerminalRenewalTests.Setup {
    /// A new server process on the same data directory.
    init(resuming previous: Self) throws {
        folder = previous.folder
        data = previous.data
        server = try ServerProcess(data: data)
    }
}
