import CardDeskCore
import CertificateAuthority
import Foundation
import Smartcard
import Testing
import VirtualSmartcard

/// Self-service unlock through pcscd, interrupted at every APDU (part of the serialized PC/SC suite).
extension PCSCTests {
    @Test("Unlock pulled out or killed (SIGKILL) at every APDU: unlock again, and the card works with the new passcode and the PUK the server holds")
    func unlockInterruptedAtEveryAPDU() async throws {
        signal(SIGPIPE, SIG_IGN) // writing to a `carddesk unlock` that was just killed must not end the test process
        let gateway = try TextGateway()
        defer { gateway.stop() }
        let setup = try TerminalRenewalTests.Setup("pcsc-unlock", serverArguments: ["--sms-gateway", gateway.url])
        let masterKey = try MasterKey.loadOrCreate(file: setup.data.appendingPathComponent("master.key"))

        func lockedCard(_ name: String) async throws -> URL {
            let file = try setup.issueCard(name, mobile: "07700900123")
            let card = PIVCardSession(transport: VirtualPIVCard(file: file))
            for _ in 0..<3 { try? await card.verifyPIN("000000") }
            return file
        }

        // How many APDUs a whole unlock sends.
        let counted = try await lockedCard("count")
        let counter = setup.folder.appendingPathComponent("unlock-count.txt")
        let countingCard = try TestCardProcess(file: counted, arguments: ["--count-file", counter.path])
        try countingCard.waitUntilInserted()
        let full = try Self.unlock(setup, gateway: gateway, passcode: "97531086")
        countingCard.stop()
        #expect(full.ok && full.stdout.contains("Your smartcard is unlocked"), "\(full.stdout) \(full.stderr)")
        let total = Int((try? String(contentsOf: counter, encoding: .utf8)) ?? "0") ?? 0
        #expect(total >= 5, "an unlock is several APDUs (\(total))")

        var interrupted = 0
        for fault in ["remove", "kill"] {
            for at in 1...total {
                let context = "unlock, \(fault) at APDU \(at) of \(total)"
                let file = try await lockedCard("\(fault)-\(at)")
                let pidFile = setup.folder.appendingPathComponent("unlock-\(fault)-\(at).pid")
                let card = try TestCardProcess(file: file, arguments: ["--fault", fault, "--at", String(at), "--pid-file", pidFile.path])
                try card.waitUntilInserted()
                let first = try Self.unlock(setup, gateway: gateway, passcode: "86420975", pidFile: pidFile)
                if !first.ok { interrupted += 1 }
                card.stop()
                if fault == "remove" { PCSCTests.pauseAfterPull() }
                let again = try CardConnection(file: file)
                try again.waitUntilInserted()
                let second = try Self.unlock(setup, gateway: gateway, passcode: "97531086")
                again.remove()
                #expect(second.ok && second.stdout.contains("Your smartcard is unlocked"), "\(context): \(second.stdout) \(second.stderr)")
                do {
                    // The new passcode works; the card's PUK is the one the server holds, with every try; nothing is pending.
                    let session = PIVCardSession(transport: VirtualPIVCard(file: file))
                    try await session.verifyPIN("97531086")
                    let serial = try await session.serial()
                    #expect(try Tools.sqlite(setup.database, "SELECT puk_next_sealed IS NULL FROM cards WHERE serial = '\(serial)'") == "1", "\(context): a PUK rotation is pending")
                    let sealed = try #require(Hex.bytes(try Tools.sqlite(setup.database, "SELECT hex(puk_sealed) FROM cards WHERE serial = '\(serial)'")))
                    let puk = String(decoding: try masterKey.open(sealed, label: "card \(serial) PUK"), as: UTF8.self)
                    #expect(try await session.pinState().pukTriesLeft == 3, "\(context)")
                    try await session.changePUK(current: puk, new: puk)
                }
                let verify = try Tools.server(["audit", "verify"], data: setup.data)
                #expect(verify.ok, "\(context): \(verify.stderr)")
            }
        }
        #expect(interrupted >= 2 * total - 4, "nearly every point must really interrupt the unlock (\(interrupted) of \(2 * total))")
    }

    /// `carddesk unlock --pcsc`, answering its questions as the holder would: the first contact, the code that
    /// arrives at the text gateway, the new passcode twice.
    static func unlock(_ setup: TerminalRenewalTests.Setup, gateway: TextGateway, passcode: String, pidFile: URL? = nil) throws -> Tools.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Tools.clientBinary)
        process.arguments = ["unlock", "--pcsc", "--server", setup.server.url]
        let input = Pipe()
        let output = setup.folder.appendingPathComponent("unlock-\(UUID().uuidString.prefix(6)).out")
        let errors = setup.folder.appendingPathComponent("unlock-\(UUID().uuidString.prefix(6)).err")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.standardInput = input
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        let before = gateway.messages.count
        try process.run()
        if let pidFile { try String(process.processIdentifier).write(to: pidFile, atomically: true, encoding: .utf8) }
        try? input.fileHandleForWriting.write(contentsOf: Data("1\n".utf8))
        let deadline = Date().addingTimeInterval(20)
        var code: String?
        while code == nil, Date() < deadline, process.isRunning {
            code = gateway.messages.dropFirst(before).last.flatMap { $0.firstMatch(of: /\b(\d{6})\b/).map { String($0.1) } }
            if code == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        if let code {
            try? input.fileHandleForWriting.write(contentsOf: Data("\(code)\n\(passcode)\n\(passcode)\n".utf8))
        }
        try? input.fileHandleForWriting.close()
        let end = Date().addingTimeInterval(30)
        while process.isRunning, Date() < end { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return Tools.Result(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: output, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
        )
    }
}

/// A text-message gateway for the server's `--sms-gateway`: a small HTTP server (Python) that keeps every message.
final class TextGateway {
    let process = Process()
    let file: URL
    let url: String

    init() throws {
        let folder = try Tools.temporaryFolder("gateway")
        file = folder.appendingPathComponent("messages.jsonl")
        let portFile = folder.appendingPathComponent("port")
        let script = """
        import http.server, json, sys
        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                with open(sys.argv[1], 'a') as f:
                    f.write(json.dumps(json.loads(body)) + "\\n")
                self.send_response(202); self.end_headers()
            def log_message(self, *args): pass
        s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
        open(sys.argv[2], 'w').write(str(s.server_address[1]))
        s.serve_forever()
        """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, file.path, portFile.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        var port = ""
        while port.isEmpty, Date() < deadline {
            port = (try? String(contentsOf: portFile, encoding: .utf8)) ?? ""
            if port.isEmpty { Thread.sleep(forTimeInterval: 0.05) }
        }
        guard !port.isEmpty else { throw ToolError("the text gateway did not start") }
        url = "http://127.0.0.1:\(port)/messages"
    }

    /// The texts received so far, oldest first.
    var messages: [String] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])?["text"]
        }
    }

    /// SIGKILL: a child started from a test's thread may have SIGTERM blocked (it inherits the thread's signal mask).
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
