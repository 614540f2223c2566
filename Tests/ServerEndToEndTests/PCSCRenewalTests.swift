import CardDeskCore
import Foundation
import PCSC
import Smartcard
import Testing

/// Cards issued by CardDesk, in vpcd's reader, renewed through pcscd (part of the serialized PC/SC suite: one pcscd,
/// one reader).
extension PCSCTests {
    /// `carddesk … --pcsc` against the setup's server.
    static func carddesk(_ arguments: [String], _ setup: TerminalRenewalTests.Setup, passcode: String? = nil) throws -> Tools.Result {
        try Tools.run(Tools.clientBinary, arguments + ["--pcsc", "--server", setup.server.url], input: passcode.map { $0 + "\n" })
    }

    @Test("A card issued by CardDesk: OpenSC and yubico-piv-tool see its two certificates and sign with it; renewed through pcscd, OpenSC lists the new ones and OCSP says the old are revoked")
    func issuedCardThroughPCSC() async throws {
        let setup = try TerminalRenewalTests.Setup("pcsc-issued")
        let file = try setup.issueCard("card")
        let connected = try CardConnection(file: file)
        defer { connected.remove() }
        try connected.waitUntilInserted()

        #expect(try Tools.run("opensc-tool", ["-r", "0", "-n"]).stdout.contains("Personal Identity Verification Card"))
        let token = try Tools.run("pkcs11-tool", ["--module", Self.opensc, "-L"])
        #expect(token.stdout.contains("token label") && token.stdout.contains("serial num"), "\(token.stdout)")
        let objects = try Tools.run("pkcs11-tool", ["--module", Self.opensc, "-O"])
        let subjects = objects.stdout.split(separator: "\n").filter { $0.contains("subject:") }
        #expect(subjects.count == 2 && subjects.allSatisfy { $0.contains("_Card_Holder") }, "\(objects.stdout)")
        let status = try Tools.run("yubico-piv-tool", ["-r", Self.reader, "-a", "status"])
        #expect(status.stdout.contains("Slot 9a:") && status.stdout.contains("Slot 9c:"), "\(status.stdout)")

        // Sign with the passcode through OpenSC; openssl checks it with the 9A certificate read off the card.
        let folder = setup.folder
        let data = folder.appendingPathComponent("data.txt"), signature = folder.appendingPathComponent("sig"), certificate = folder.appendingPathComponent("9a.der")
        try Data("signed with a CardDesk card".utf8).write(to: data)
        #expect(try Tools.run("pkcs11-tool", ["--module", Self.opensc, "--read-object", "--type", "cert", "--id", "01", "-o", certificate.path]).ok)
        let publicKey = folder.appendingPathComponent("9a.pub")
        #expect(try Tools.run("openssl", ["x509", "-inform", "DER", "-in", certificate.path, "-pubkey", "-noout", "-out", publicKey.path]).ok)
        let signed = try Tools.run("pkcs11-tool", ["--module", Self.opensc, "--login", "--pin", "123456", "--sign", "--id", "01", "-m", "ECDSA-SHA256",
                                                   "--signature-format", "openssl", "-i", data.path, "-o", signature.path])
        #expect(signed.ok, "\(signed.stderr)")
        #expect(try Tools.run("openssl", ["dgst", "-sha256", "-verify", publicKey.path, "-signature", signature.path, data.path]).stdout.contains("Verified OK"))

        // Renewal through pcscd.
        let before = try Self.serialOfCertificate(id: "01", folder: folder)
        let renewed = try Self.carddesk(["renew"], setup, passcode: "123456")
        #expect(renewed.ok && renewed.stdout.contains("Success: certificate renewed for smartcard"), "\(renewed.stdout) \(renewed.stderr)")
        let after = try Self.serialOfCertificate(id: "01", folder: folder)
        #expect(before != after)
        // Nothing stays open on the card after the renewal: another program can neither write nor sign.
        try await Self.expectNothingOpen()
        let pki = setup.data.appendingPathComponent("pki")
        func ocsp(_ serial: String) throws -> String {
            try Tools.run("openssl", ["ocsp", "-issuer", pki.appendingPathComponent("authentication-ca.pem").path, "-serial", "0x\(serial)",
                                      "-url", "\(setup.server.url)/ocsp", "-CAfile", pki.appendingPathComponent("root.pem").path]).stdout
        }
        let old = try ocsp(before)
        #expect(old.contains(": revoked") && old.contains("Reason: superseded"), "\(old)")
        #expect(try ocsp(after).contains(": good"))
        connected.remove()
        try setup.expectConsistent(file, "renewed through pcscd")
    }

    @Test("A blank virtual card enrolled with carddesk card enrol through pcscd: yubico-piv-tool with the factory management key is then refused")
    func enrolThroughPCSC() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let setup = try TerminalRenewalTests.Setup("pcsc-enrol")
            let user = "555254600177"
            #expect(try Tools.server(["user", "add", "--id", user, "--given", "Enrolled", "--family", "Holder", "--org", "RBQ", "--role", "R8000@RBQ"], data: setup.data).ok)
            let file = setup.folder.appendingPathComponent("blank.json")
            // Made by the virtual-card manufacturer the server trusts, so the card attests its keys.
            let blank = try Tools.run(Tools.clientBinary, ["card", "blank", file.path, "--manufacturer", setup.data.appendingPathComponent("virtual-card-manufacturer").path])
            #expect(blank.ok && blank.stdout.contains("It attests its keys"), "\(blank.stdout) \(blank.stderr)")
            let connected = try CardConnection(file: file)
            defer { connected.remove() }
            try connected.waitUntilInserted()
            // Blank: the factory management key works (and is used here only to look, not to change anything).
            #expect(try Tools.run("yubico-piv-tool", ["-r", Self.reader, "-a", "status"]).stdout.contains("PIN tries left:\t3"))

            let issued = try Tools.server(["card", "enrol-token", "--user", user, "--key-algorithm", "p256"], data: setup.data)
            #expect(issued.ok, "\(issued.stderr)")
            let token = issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let enrolled = try Tools.run(Tools.clientBinary, ["card", "enrol", "--token", token, "--pcsc", "--server", setup.server.url], input: "24681357\n24681357\n")
            #expect(enrolled.ok && enrolled.stdout.contains("enrolled for user \(user)"), "\(enrolled.stdout) \(enrolled.stderr)")

            let factory = try Tools.run("yubico-piv-tool", ["-r", Self.reader, "-a", "generate", "-s", "9a", "-A", "ECCP256"])
            #expect(!factory.ok && factory.stderr.contains("Failed authentication"), "\(factory.stdout) \(factory.stderr)")
            let objects = try Tools.run("pkcs11-tool", ["--module", Self.opensc, "-O"])
            #expect(objects.stdout.split(separator: "\n").filter { $0.contains("subject:") && $0.contains("_Enrolled_Holder") }.count == 2, "\(objects.stdout)")
            let again = try Tools.run(Tools.clientBinary, ["card", "enrol", "--token", token, "--pcsc", "--server", setup.server.url], input: "24681357\n24681357\n")
            #expect(!again.ok && again.stderr.contains("not valid"), "the token is single use: \(again.stderr)")
            let status = try Self.carddesk(["status"], setup)
            #expect(status.ok && status.stdout.contains("Authentication certificate: CN=\(user)_Enrolled_Holder"), "\(status.stdout) \(status.stderr)")
        }
    }

    /// A fresh connection finds the PIN not verified and the management key not authenticated.
    static func expectNothingOpen() async throws {
        let context = try await PCSCContext.establish()
        let card = try await context.connect(reader: reader)
        let piv = PIVClient(transport: card)
        try await piv.select()
        #expect(try await piv.pinTriesLeft() != nil, "the PIN is not verified for the next program")
        let write = await #expect(throws: CardDeskError.self) { try await piv.writeObject(PIV.Object.chuid, [0x01]) }
        #expect(write?.code == .notAuthorised)
        await card.disconnect()
    }

    /// The serial of the certificate with PKCS#11 ID `id` on the card, read through OpenSC.
    static func serialOfCertificate(id: String, folder: URL) throws -> String {
        let file = folder.appendingPathComponent("cert-\(id).der")
        try? FileManager.default.removeItem(at: file)
        let read = try Tools.run("pkcs11-tool", ["--module", opensc, "--read-object", "--type", "cert", "--id", id, "-o", file.path])
        guard read.ok else { throw ToolError("pkcs11-tool --read-object: \(read.stderr)") }
        let serial = try Tools.run("openssl", ["x509", "-inform", "DER", "-in", file.path, "-noout", "-serial"]).stdout
        return serial.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
    }

    /// How many APDUs a whole renewal sends (counted by the test card), so the fault tests can stop at each one.
    static func apdusInRenewal(_ setup: TerminalRenewalTests.Setup) throws -> Int {
        let file = try setup.issueCard("count")
        let counter = setup.folder.appendingPathComponent("count.txt")
        let card = try TestCardProcess(file: file, arguments: ["--count-file", counter.path])
        defer { card.stop() }
        try card.waitUntilInserted()
        let start = Int((try? String(contentsOf: counter, encoding: .utf8)) ?? "0") ?? 0
        let renewed = try carddesk(["renew"], setup, passcode: "123456")
        guard renewed.ok else { throw ToolError("the counted renewal failed: \(renewed.stderr)") }
        let end = Int(try String(contentsOf: counter, encoding: .utf8)) ?? 0
        return end - start
    }

    @Test("The card pulled out at every APDU of a renewal, or the agent killed (SIGKILL) at every APDU: renew again, and the card works with one valid certificate per profile")
    func interruptedAtEveryAPDU() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let setup = try TerminalRenewalTests.Setup("pcsc-faults")
            let total = try Self.apdusInRenewal(setup)
            #expect(total > 20, "a renewal is dozens of APDUs (\(total))")
            var interrupted = 0
            for fault in ["remove", "kill"] {
                for at in 1...total {
                    let context = "\(fault) at APDU \(at) of \(total)"
                    let file = try setup.issueCard("\(fault)-\(at)")
                    let pidFile = setup.folder.appendingPathComponent("\(fault)-\(at).pid")
                    let card = try TestCardProcess(file: file, arguments: ["--fault", fault, "--at", String(at), "--pid-file", pidFile.path])
                    try card.waitUntilInserted()
                    // The agent's PID goes where the card will look for it, as soon as the agent starts.
                    let first = try Tools.run(Tools.clientBinary, ["renew", "--pcsc", "--server", setup.server.url], input: "123456\n") { pid in
                        try? String(pid).write(to: pidFile, atomically: true, encoding: .utf8)
                    }
                    if !first.ok { interrupted += 1 }
                    if fault == "remove", !first.ok {
                        #expect(first.stderr.contains("removed") || first.stderr.contains("no smartcard") || first.stderr.contains("not answer"), "\(context): \(first.stderr)")
                    }
                    card.stop()
                    if fault == "remove" { PCSCTests.pauseAfterPull() }
                    // The card back in the reader (a plain one this time), and the renewal run again.
                    let again = try CardConnection(file: file)
                    try again.waitUntilInserted()
                    let second = try Self.carddesk(["renew"], setup, passcode: "123456")
                    #expect(second.ok && second.stdout.contains("Success: certificate renewed for smartcard"), "\(context): \(second.stdout) \(second.stderr)")
                    again.remove()
                    try setup.expectConsistent(file, context)
                }
            }
            #expect(interrupted >= 2 * total - 4, "nearly every point must really interrupt the renewal (\(interrupted) of \(2 * total))")
        }
    }
}

/// `carddesk-test-card FILE …` running: the card is in vpcd's first reader until it leaves on its own (a `remove`
/// fault) or `stop()`.
final class TestCardProcess {
    let process = Process()
    let log: URL

    init(file: URL, arguments: [String]) throws {
        log = file.deletingLastPathComponent().appendingPathComponent("test-card-\(UUID().uuidString.prefix(6)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Tools.clientBinary).deletingLastPathComponent().appendingPathComponent("carddesk-test-card")
        process.arguments = [file.path] + arguments
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    func waitUntilInserted(seconds: Double = 15) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let list = try Tools.run("opensc-tool", ["-l"])
            if list.stdout.split(separator: "\n").contains(where: { $0.contains("Yes") && $0.contains(PCSCTests.reader) }) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ToolError("the test card did not appear in \(PCSCTests.reader): \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        PCSCTests.waitUntilReaderEmpty()
    }
}
