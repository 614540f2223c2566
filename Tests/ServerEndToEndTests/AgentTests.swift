import Foundation
import Testing

/// `carddesk agent` as a card holder uses it in a terminal: card in, passcode, role, expiry notification, card out.
@Suite("Workstation agent (terminal)", .serialized)
struct AgentTests {
    /// A running `carddesk agent` whose standard input the test types into.
    final class Agent {
        let process = Process()
        let input = Pipe()
        let output: URL

        init(reader: URL, server: String, browserLog: URL, folder: URL) throws {
            output = folder.appendingPathComponent("agent-\(UUID().uuidString.prefix(6)).log")
            FileManager.default.createFile(atPath: output.path, contents: nil)
            // The "browser" records the URL it is asked to open, as a WebDriver hand-over will in the browser tests.
            let browser = folder.appendingPathComponent("browser.sh")
            try "#!/bin/sh\necho \"$1\" >> \(browserLog.path)\n".write(to: browser, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: browser.path)
            process.executableURL = URL(fileURLWithPath: Tools.clientBinary)
            process.arguments = ["agent", "--reader", reader.path, "--server", server, "--bridge-port", "0"]
            process.environment = ProcessInfo.processInfo.environment.merging(["BROWSER": browser.path]) { $1 }
            process.standardInput = input
            process.standardOutput = try FileHandle(forWritingTo: output)
            process.standardError = try FileHandle(forWritingTo: output)
            try process.run()
        }

        var text: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

        func type(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }

        /// Waits until the output contains `needle` `count` times.
        func waitFor(_ needle: String, count: Int = 1, seconds: Double = 20) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if text.components(separatedBy: needle).count - 1 >= count { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
            throw ToolError("the agent never said \"\(needle)\"; it said:\n\(text)")
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    @Test("Insert, wrong then right passcode, second of two roles, Yes opens the renewal page; removal logs out; No prints the link")
    func journey() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("agent")
            let data = folder.appendingPathComponent("data")
            let add = try Tools.server(["user", "add", "--id", "555254600150", "--given", "Asha", "--family", "Patel", "--org", "RBQ",
                                        "--role", "S0080:G0450:R5080@RBQ", "--role", "S8000:G8000:R8000@X26"], data: data)
            #expect(add.ok, "\(add.stderr)")
            let server = try ServerProcess(data: data)
            let card = folder.appendingPathComponent("asha.json")
            let issue = try Tools.server(["card", "issue", "--user", "555254600150", "--virtual", card.path,
                                          "--expires-in-days", "30", "--key-algorithm", "p256", "--public-url", server.url], data: data, input: "246810\n")
            #expect(issue.ok, "\(issue.stderr)")
            let reader = folder.appendingPathComponent("reader")
            try FileManager.default.createDirectory(at: reader, withIntermediateDirectories: true)
            let browserLog = folder.appendingPathComponent("browser.log")
            let agent = try Agent(reader: reader, server: server.url, browserLog: browserLog, folder: folder)
            try agent.waitFor("Insert your smartcard.")

            #expect(try Tools.run(Tools.clientBinary, ["card", "insert", card.path, "--reader", reader.path]).ok)
            try agent.waitFor("Passcode:")
            agent.type("111111")
            try agent.waitFor("The passcode you entered is not valid. You have 2 remaining tries")
            try agent.waitFor("Passcode:", count: 2)
            agent.type("246810")
            try agent.waitFor("Role number [1-2]:")
            #expect(agent.text.contains("  1. S0080:G0450:R5080@RBQ\n  2. S8000:G8000:R8000@X26"))
            agent.type("2")
            try agent.waitFor("Signed in as Asha Patel (555254600150) in role S8000:G8000:R8000@X26.")
            try agent.waitFor("(30 days). Renew them now? [Yes/No]")
            agent.type("Yes")
            try agent.waitFor("Opening \(server.url)/?operation=selfRenewSmartcard in your browser.")
            Thread.sleep(forTimeInterval: 0.3)
            // The browser is opened with a single-use hand-over secret in the fragment (never printed, never sent to the server).
            let opened = (try? String(contentsOf: browserLog, encoding: .utf8)) ?? ""
            #expect(opened.wholeMatch(of: /(.+)#handover=[0-9a-f]{64}\n/)?.1 == "\(server.url)/?operation=selfRenewSmartcard")

            let database = data.appendingPathComponent("carddesk.sqlite")
            #expect(try Tools.sqlite(database, "SELECT count(*) FROM sessions WHERE ended_at IS NULL") == "1")
            #expect(try Tools.run(Tools.clientBinary, ["card", "remove", "--reader", reader.path]).ok)
            try agent.waitFor("Card removed: you have been logged out.")
            #expect(try Tools.sqlite(database, "SELECT end_reason FROM sessions") == "card removed")

            #expect(try Tools.run(Tools.clientBinary, ["card", "insert", card.path, "--reader", reader.path]).ok)
            try agent.waitFor("Passcode:", count: 3)
            agent.type("246810")
            try agent.waitFor("Role number [1-2]:", count: 2)
            agent.type("1")
            try agent.waitFor("in role S0080:G0450:R5080@RBQ.")
            try agent.waitFor("Renew them now? [Yes/No]", count: 2)
            agent.type("No")
            try agent.waitFor("To renew later, copy this link into a supported browser: \(server.url)/?operation=selfRenewSmartcard")
            #expect(Int(try Tools.sqlite(database, "SELECT count(*) FROM audit_events WHERE action = 'login' AND outcome = 'success'")) ?? 0 >= 4)
        }
    }
}
