import Foundation
import Testing

/// Issue 12: OCSP answers signed ahead (at issuance and revocation), kept in the store, served from memory.
@Suite("OCSP answers signed ahead", .serialized)
struct OCSPCacheTests {
    /// `openssl ocsp` without a nonce (the RFC 5019 question), saving the DER answer.
    static func ask(_ setup: TerminalRenewalTests.Setup, profile: String, serial: String, out: URL, trust: [String]) throws -> Tools.Result {
        let pki = setup.data.appendingPathComponent("pki")
        return try Tools.run("openssl", ["ocsp", "-no_nonce", "-issuer", pki.appendingPathComponent("\(profile)-ca.pem").path, "-serial", "0x\(serial)",
                                         "-url", "\(setup.server.url)/ocsp", "-respout", out.path] + trust)
    }

    static func storedAnswer(_ setup: TerminalRenewalTests.Setup, serial: String) throws -> String {
        try Tools.sqlite(setup.database, "SELECT hex(der) FROM ocsp_responses WHERE serial = '\(serial)'")
    }

    static func hex(_ file: URL) throws -> String {
        try Data(contentsOf: file).map { String(format: "%02X", $0) }.joined()
    }

    @Test("Served byte for byte as stored, accepted by openssl (-VAfile); signed at issuance by the server; a renewal's revocation is in the very next answer; another process's within a second")
    func servedFromTheCache() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let setup = try TerminalRenewalTests.Setup("ocsp-cache")
            let card = try setup.issueCard("card")
            let before = try setup.serialsOnCard(card)
            let folder = setup.folder
            let first = folder.appendingPathComponent("first.der"), second = folder.appendingPathComponent("second.der")

            // Issued by `card issue` (an operator's command, which leaves signing answers to the server): signed at the
            // first question, stored, and served as stored from then on.
            #expect(try Self.storedAnswer(setup, serial: before[0]) == "")
            let noverify = try Self.ask(setup, profile: "authentication", serial: before[0], out: first, trust: ["-noverify"])
            #expect(noverify.stdout.contains(": good"), "\(noverify.stdout)\(noverify.stderr)")
            let stored = try Self.storedAnswer(setup, serial: before[0])
            #expect(try stored.count > 200 && Self.hex(first) == stored, "served byte for byte as stored")
            // The responder's certificate travels in the answer: trusted as such (-VAfile), openssl accepts the answer.
            let text = try Tools.run("openssl", ["ocsp", "-respin", first.path, "-resp_text", "-noverify"]).stdout
            let responder = folder.appendingPathComponent("responder.pem")
            let begin = try #require(text.range(of: "-----BEGIN CERTIFICATE-----")), end = try #require(text.range(of: "-----END CERTIFICATE-----"))
            try String(text[begin.lowerBound..<end.upperBound]).write(to: responder, atomically: true, encoding: .utf8)
            let trust = ["-VAfile", responder.path]
            let verified = try Self.ask(setup, profile: "authentication", serial: before[0], out: second, trust: trust)
            #expect(verified.stdout.contains(": good") && verified.stderr.contains("Response verify OK"), "\(verified.stdout)\(verified.stderr)")
            #expect(try Self.hex(second) == stored, "asked again: the same answer (from memory)")
            // Over GET, with RFC 5019 caching headers, the same bytes.
            let request = folder.appendingPathComponent("request.der")
            _ = try Tools.run("openssl", ["ocsp", "-no_nonce", "-issuer", setup.data.appendingPathComponent("pki/authentication-ca.pem").path,
                                          "-serial", "0x\(before[0])", "-reqout", request.path])
            let path = try Data(contentsOf: request).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let viaGet = folder.appendingPathComponent("get.der")
            let get = try Tools.run("curl", ["-s", "-D", "-", "-o", viaGet.path, "\(setup.server.url)/ocsp/\(path)"])
            #expect(get.stdout.lowercased().contains("cache-control: max-age="), "\(get.stdout)")
            #expect(try Self.hex(viaGet) == stored)

            // Renewed: the server revokes the old certificates itself; the next question is answered "revoked".
            let renewed = try setup.carddesk(["renew"], card: card, passcode: "123456")
            #expect(renewed.ok, "\(renewed.stderr)")
            let next = folder.appendingPathComponent("next.der")
            let revoked = try Self.ask(setup, profile: "authentication", serial: before[0], out: next, trust: trust)
            #expect(revoked.stdout.contains(": revoked") && revoked.stdout.contains("Reason: superseded"), "\(revoked.stdout)\(revoked.stderr)")
            #expect(revoked.stderr.contains("Response verify OK"))
            #expect(try Self.hex(next) == Self.storedAnswer(setup, serial: before[0]), "the revoked answer, as stored")

            // The new certificates were issued by the server: their answers were signed then, before any question.
            let after = try setup.serialsOnCard(card)
            for (index, profile) in ["authentication", "signing"].enumerated() {
                let presigned = try Self.storedAnswer(setup, serial: after[index])
                #expect(presigned.count > 200, "\(profile) \(after[index]) signed at issuance")
                // (Each issuing CA has its own responder: the signing CA's is trusted through the chain.)
                let answer = try Self.ask(setup, profile: profile, serial: after[index], out: next,
                                          trust: index == 0 ? trust : ["-CAfile", setup.data.appendingPathComponent("pki/root.pem").path])
                #expect(answer.stdout.contains(": good") && answer.stderr.contains("Response verify OK"), "\(answer.stdout)\(answer.stderr)")
                #expect(try Self.hex(next) == presigned)
            }

            // Revoked by an operator's command (another process): the server drops what it holds once it sees it.
            #expect(try Tools.server(["ca", "revoke", after[1], "--reason", "keyCompromise"], data: setup.data).ok)
            var answer = ""
            for _ in 0..<20 {
                answer = try Self.ask(setup, profile: "signing", serial: after[1], out: next, trust: ["-noverify"]).stdout
                if answer.contains(": revoked") { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            #expect(answer.contains(": revoked") && answer.contains("Reason: keyCompromise"), "\(answer)")
        }
    }

    @Test("Answers are signed again before nextUpdate (validity one minute): the server serves the new one")
    func refreshedBeforeNextUpdate() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("ocsp-refresh")
            let data = folder.appendingPathComponent("data")
            try OperatorCommandTests.addUser(data)
            let csr = try Tools.opensslCSR("ec:P-256", in: folder, name: "card")
            let issued = try OperatorCommandTests.issue(data, profile: "signing", csr: csr)
            #expect(issued.ok, "\(issued.stderr)")
            let pem = folder.appendingPathComponent("card.pem")
            try issued.stdout.write(to: pem, atomically: true, encoding: .utf8)
            let serial = try Tools.serial(ofCertificate: pem)
            let database = data.appendingPathComponent("carddesk.sqlite")
            let server = try ServerProcess(data: data, environment: ["CARDDESK_OCSP_VALIDITY_MINUTES": "1"])
            func row() throws -> (thisUpdate: Int64, nextUpdate: Int64) {
                let fields = try Tools.sqlite(database, "SELECT this_update || ' ' || next_update FROM ocsp_responses WHERE serial = '\(serial)'")
                    .split(separator: " ").compactMap { Int64($0) }
                return fields.count == 2 ? (fields[0], fields[1]) : (0, 0)
            }
            // `ca issue` (an operator's command) leaves the answer to the server: signed at the first question, stored;
            // the server signs it again when due.
            let ask = { (out: URL) throws -> Tools.Result in
                try Tools.run("openssl", ["ocsp", "-no_nonce", "-issuer", data.appendingPathComponent("pki/signing-ca.pem").path, "-serial", "0x\(serial)",
                                          "-url", "\(server.url)/ocsp", "-respout", out.path, "-CAfile", data.appendingPathComponent("pki/root.pem").path])
            }
            #expect(try row().thisUpdate == 0, "nothing stored before the first question")
            #expect(try ask(folder.appendingPathComponent("first.der")).stdout.contains(": good"))
            let issuedRow = try row()
            #expect(issuedRow.thisUpdate > 0)
            _ = try Tools.sqlite(database, "UPDATE ocsp_responses SET refresh_after = 0 WHERE serial = '\(serial)'")
            var refreshed = issuedRow
            let deadline = Date().addingTimeInterval(40)
            while Date() < deadline {
                refreshed = try row()
                if refreshed.thisUpdate != issuedRow.thisUpdate { break }
                Thread.sleep(forTimeInterval: 0.5)
            }
            #expect(refreshed.thisUpdate > issuedRow.thisUpdate, "signed again")
            #expect(refreshed.nextUpdate - refreshed.thisUpdate == 60_000, "with the server's validity")
            // And again before that one's nextUpdate, from the half of its validity on.
            let deadline2 = Date().addingTimeInterval(55)
            var third = refreshed
            while Date() < deadline2 {
                third = try row()
                if third.thisUpdate != refreshed.thisUpdate { break }
                Thread.sleep(forTimeInterval: 0.5)
            }
            #expect(third.thisUpdate > refreshed.thisUpdate && third.thisUpdate < refreshed.nextUpdate, "refreshed before nextUpdate: \(refreshed) → \(third)")
            let out = folder.appendingPathComponent("answer.der")
            let answer = try ask(out)
            #expect(answer.stdout.contains(": good") && answer.stderr.contains("Response verify OK"), "\(answer.stdout)\(answer.stderr)")
            #expect(try OCSPCacheTests.hex(out) == Tools.sqlite(database, "SELECT hex(der) FROM ocsp_responses WHERE serial = '\(serial)'"))
            server.signal(SIGTERM)
            #expect(server.waitForExit() == 0)
        }
    }
}
