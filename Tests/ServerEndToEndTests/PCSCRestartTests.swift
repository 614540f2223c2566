import Foundation
import Testing

extension PCSCTests {
    @Test(
        "`carddesk card connect` puts the card back by itself when pcscd restarts",
        .enabled(if: getuid() == 0, "restarting the machine's pcscd needs root")
    )
    func reconnectsAfterPCSCDRestart() throws {
        let folder = try Tools.temporaryFolder("pcsc-restart")
        let file = folder.appendingPathComponent("card.json")
        #expect(try Tools.run(Tools.clientBinary, ["card", "blank", file.path]).ok)
        let connected = try CardConnection(file: file)
        defer { connected.remove() }
        try connected.waitUntilInserted()

        try PCSCDaemon.restart()
        // The same `card connect`, not a new one: it noticed pcscd go and come back, and connected again.
        try connected.waitUntilInserted(seconds: 20)
        #expect(connected.process.isRunning)
        let name = try Tools.run("opensc-tool", ["-r", "0", "-n"])
        #expect(name.stdout.contains("Personal Identity Verification Card"), "\(name.stdout) \(name.stderr)")
        #expect(connected.output.contains("pcscd"), "it said why the card was out meanwhile: \(connected.output)")
    }
}

/// The machine's pcscd, stopped and started again as a real restart is (scripts/pcscd-start). When scripts/test
/// started the pcscd that is stopped here, the new one's PID goes in the file it stops at the end
/// (`CARDDESK_TEST_PCSCD_PIDFILE`); a pcscd that ran before the tests is replaced by one that is left running too.
enum PCSCDaemon {
    /// The PIDs of live pcscd processes (not zombies left by a killed one).
    static func running() throws -> [Int32] {
        let listed = try Tools.run("ps", ["-C", "pcscd", "-o", "pid=,stat="])
        return listed.stdout.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 2, !fields[1].hasPrefix("Z") else { return nil }
            return Int32(fields[0])
        }
    }

    static func restart() throws {
        let old = try running()
        try #require(!old.isEmpty, "pcscd is not running")
        for pid in old { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(5)
        while try !running().isEmpty, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        for pid in try running() { kill(pid, SIGKILL) }
        while try !running().isEmpty { Thread.sleep(forTimeInterval: 0.05) }

        let started = try Tools.run(Tools.package.appendingPathComponent("scripts/pcscd-start").path, [])
        try #require(started.ok, "scripts/pcscd-start: \(started.stderr)")
        let pid = started.stdout.split(separator: "'").dropFirst().first.map(String.init) ?? ""
        if let file = ProcessInfo.processInfo.environment["CARDDESK_TEST_PCSCD_PIDFILE"],
           let owned = try? String(contentsOfFile: file, encoding: .utf8), !owned.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            try Data(pid.utf8).write(to: URL(fileURLWithPath: file))
        }
    }
}
