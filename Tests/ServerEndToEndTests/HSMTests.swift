import Foundation
import Testing

/// A SoftHSMv2 token directory of its own (for the programs a test runs: pass `environment` to them).
struct SoftHSMTokens {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"
    let folder: URL
    let pin = "2468-hsm"
    let pinFile: URL
    var environment: [String: String] { ["SOFTHSM2_CONF": folder.appendingPathComponent("softhsm2.conf").path] }

    init(in parent: URL, labels: [String]) throws {
        folder = parent.appendingPathComponent("softhsm")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("tokens"), withIntermediateDirectories: true)
        try "directories.tokendir = \(folder.path)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
            .write(to: folder.appendingPathComponent("softhsm2.conf"), atomically: true, encoding: .utf8)
        pinFile = parent.appendingPathComponent("hsm.pin")
        try (pin + "\n").write(to: pinFile, atomically: true, encoding: .utf8)
        for label in labels {
            let made = try Tools.run("softhsm2-util", ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "1357-so"], environment: environment)
            guard made.ok else { throw ToolError("softhsm2-util --init-token \(label): \(made.stdout) \(made.stderr) (apt-get install softhsm2)") }
        }
    }

    func pkcs11Tool(_ arguments: [String]) throws -> Tools.Result {
        try Tools.run("pkcs11-tool", ["--module", Self.module] + arguments, environment: environment)
    }
}

@Suite("CA keys in an HSM: the key ceremony and the server signing through SoftHSMv2")
struct HSMTests {
    @Test("ca init on SoftHSMv2, then issuance, revocation, a CRL and OCSP all work; pkcs11-tool shows the keys sensitive and never extractable; no file holds a CA private key")
    func ceremonyThenService() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("hsm")
            let data = folder.appendingPathComponent("data")
            let hsm = try SoftHSMTokens(in: folder, labels: ["CardDesk CA", "CardDesk Root"])

            let ceremony = try Tools.server(
                ["ca", "init", "--pkcs11-module", SoftHSMTokens.module, "--token-label", "CardDesk CA", "--pin-file", hsm.pinFile.path, "--root-token", "CardDesk Root"],
                data: data, environment: hsm.environment
            )
            #expect(ceremony.ok, "ca init: \(ceremony.stderr)")
            #expect(ceremony.stdout.contains("root CA key generated in PKCS#11 token \"CardDesk Root\""), "\(ceremony.stdout)")
            #expect(ceremony.stdout.contains("authentication CA key generated in PKCS#11 token \"CardDesk CA\""), "\(ceremony.stdout)")
            // Run twice: refused, nothing changed.
            let again = try Tools.server(["ca", "init", "--pkcs11-module", SoftHSMTokens.module, "--token-label", "CardDesk CA", "--pin-file", hsm.pinFile.path],
                                         data: data, environment: hsm.environment)
            #expect(!again.ok && again.stderr.contains("already holds a PKI"), "\(again.stderr)")

            // The keys: in the tokens, sensitive, never extractable.
            for (token, count) in [("CardDesk CA", 2), ("CardDesk Root", 1)] {
                let listed = try hsm.pkcs11Tool(["--token-label", token, "--login", "--pin", hsm.pin, "--list-objects", "--type", "privkey"])
                #expect(listed.ok, "\(listed.stderr)")
                let keys = listed.stdout.components(separatedBy: "Private Key Object").dropFirst()
                #expect(keys.count == count, "\(token): \(listed.stdout)")
                for key in keys {
                    #expect(key.contains("sensitive") && key.contains("never extractable"), "\(token): \(key)")
                }
            }
            // No file under the data directory holds a CA private key.
            let files = FileManager.default.enumerator(at: data, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
            #expect(!files.contains { $0.lastPathComponent.hasSuffix(".key.sealed") }, "\(files.map(\.lastPathComponent))")
            for file in files where !file.hasDirectoryPath {
                let bytes = (try? Data(contentsOf: file)) ?? Data()
                #expect(!String(decoding: bytes, as: UTF8.self).contains("PRIVATE KEY"), "\(file.path)")
            }
            // Each step is in the audit log, and the chain verifies.
            let audit = try Tools.server(["audit", "verify"], data: data, environment: hsm.environment)
            #expect(audit.ok, "\(audit.stderr)")
            let steps = try Tools.sqlite(data.appendingPathComponent("carddesk.sqlite"), "SELECT count(*) FROM audit_events WHERE action = 'ca.ceremony'")
            #expect(steps == "6", "three keys and three certificates: \(steps)")

            // The operator commands and the server sign through the token (config.json names it).
            try OperatorCommandTests.addUser(data, environment: hsm.environment)
            let server = try ServerProcess(data: data, environment: hsm.environment)
            defer { server.signal(SIGTERM); _ = server.waitForExit() }
            let csr = try Tools.opensslCSR("ec:P-256", in: folder, name: "holder")
            let issued = try OperatorCommandTests.issue(data, profile: "authentication", csr: csr, publicURL: server.url, environment: hsm.environment)
            #expect(issued.ok, "ca issue: \(issued.stderr)")
            let pem = folder.appendingPathComponent("holder.pem")
            try issued.stdout.write(to: pem, atomically: true, encoding: .utf8)
            let pki = data.appendingPathComponent("pki")
            let issuer = pki.appendingPathComponent("authentication-ca.pem"), root = pki.appendingPathComponent("root.pem")
            let chain = folder.appendingPathComponent("chain.pem")
            try (try String(contentsOf: issuer, encoding: .utf8) + "\n" + (try String(contentsOf: root, encoding: .utf8))).write(to: chain, atomically: true, encoding: .utf8)
            let verified = try Tools.run("openssl", ["verify", "-CAfile", chain.path, pem.path])
            #expect(verified.stdout.contains("OK"), "\(verified.stdout) \(verified.stderr)")

            // OCSP: answered by the delegated responder, which openssl accepts through the chain (-CAfile) and as
            // a trusted responder (-VAfile); pkilint finds no error in the response or the responder certificate.
            let responseFile = folder.appendingPathComponent("response.der")
            let responderFile = folder.appendingPathComponent("responder.pem")
            func ocsp(_ trust: [String]) throws -> Tools.Result {
                try Tools.run("openssl", ["ocsp", "-issuer", issuer.path, "-cert", pem.path, "-url", "\(server.url)/ocsp", "-respout", responseFile.path] + trust)
            }
            let good = try ocsp(["-CAfile", root.path])
            #expect(good.stdout.contains(": good") && good.stderr.contains("Response verify OK"), "\(good.stdout) \(good.stderr)")
            let printed = try Tools.run("openssl", ["ocsp", "-respin", responseFile.path, "-resp_text", "-noverify"])
            #expect(printed.stdout.contains("Authentication CA OCSP Responder") && printed.stdout.contains("OCSP No Check"), "\(printed.stdout)")
            let responder = try Tools.run("openssl", ["ocsp", "-respin", responseFile.path, "-noverify", "-resp_text"]).stdout
            guard let begin = responder.range(of: "-----BEGIN CERTIFICATE-----"), let end = responder.range(of: "-----END CERTIFICATE-----") else {
                Issue.record("the response carries no responder certificate: \(responder)")
                return
            }
            try String(responder[begin.lowerBound..<end.upperBound]).write(to: responderFile, atomically: true, encoding: .utf8)
            let byVA = try ocsp(["-VAfile", responderFile.path])
            #expect(byVA.stdout.contains(": good") && byVA.stderr.contains("Response verify OK"), "\(byVA.stdout) \(byVA.stderr)")
            #expect(try OperatorCommandTests.pkilintErrors("lint_ocsp_response", [], file: responseFile) == "")
            #expect(try OperatorCommandTests.pkilintErrors("lint_pkix_cert", [], file: responderFile) == "")
            let validator = Tools.package.appendingPathComponent("Tests/Support/Python/validate_with_ocsp.py").path
            let accepted = try Tools.run("python3", [validator, pem.path, issuer.path, root.path])
            #expect(accepted.ok && accepted.stdout.contains("valid"), "pyhanko-certvalidator: \(accepted.stdout) \(accepted.stderr)")

            // Revoked, then OCSP and pyhanko say so, and the CRL (signed in the token) lists it.
            let serial = try Tools.serial(ofCertificate: pem)
            let revoked = try Tools.server(["ca", "revoke", serial, "--reason", "keyCompromise"], data: data, environment: hsm.environment)
            #expect(revoked.ok, "\(revoked.stderr)")
            let answer = try ocsp(["-CAfile", root.path])
            #expect(answer.stdout.contains(": revoked") && answer.stderr.contains("Response verify OK"), "\(answer.stdout) \(answer.stderr)")
            let refused = try Tools.run("python3", [validator, pem.path, issuer.path, root.path])
            #expect(!refused.ok && refused.stdout.hasPrefix("revoked"), "pyhanko-certvalidator: \(refused.stdout) \(refused.stderr)")
            let crl = folder.appendingPathComponent("authentication.crl")
            let listed = try Tools.server(["ca", "crl", "--profile", "authentication"], data: data, environment: hsm.environment)
            try listed.stdout.write(to: crl, atomically: true, encoding: .utf8)
            let crlCheck = try Tools.run("openssl", ["crl", "-in", crl.path, "-CAfile", chain.path, "-noout", "-text"])
            #expect(crlCheck.stderr.contains("verify OK") || crlCheck.stdout.contains("verify OK"), "\(crlCheck.stdout) \(crlCheck.stderr)")
            #expect(crlCheck.stdout.uppercased().contains(serial.uppercased()))
            // The responder certificate is on record.
            let responders = try Tools.sqlite(data.appendingPathComponent("carddesk.sqlite"), "SELECT count(*) FROM audit_events WHERE subject = 'ocsp-responder:authentication'")
            #expect(responders == "1", "one responder certificate for the authentication CA: \(responders)")
        }
    }

    @Test("The configured key store and the data directory must agree: a sealed PKI under ca.keys=pkcs11, and a token PKI without it, both refuse to start")
    func storesMustAgree() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("hsm-agree")
            let hsm = try SoftHSMTokens(in: folder, labels: ["CardDesk CA"])
            // A PKI in sealed files (the default), then configured for a token.
            let sealed = folder.appendingPathComponent("sealed")
            try OperatorCommandTests.addUser(sealed)
            let pkcs11Environment = hsm.environment.merging([
                "CARDDESK_CA_KEYS": "pkcs11", "CARDDESK_CA_PKCS11_MODULE": SoftHSMTokens.module,
                "CARDDESK_CA_PKCS11_TOKEN": "CardDesk CA", "CARDDESK_CA_PKCS11_PIN_FILE": hsm.pinFile.path,
            ]) { $1 }
            let refused = try Tools.server(["audit", "verify"], data: sealed, environment: pkcs11Environment)
            #expect(!refused.ok && refused.stderr.contains("sealed files"), "\(refused.stderr)")
            // A PKI in the token, then configured for sealed files.
            let token = folder.appendingPathComponent("token")
            let unknownType = try Tools.server(["ca", "init", "--pkcs11-module", SoftHSMTokens.module, "--token-label", "CardDesk CA", "--pin-file", hsm.pinFile.path,
                                                "--key-type", "dsa1024"], data: token, environment: hsm.environment)
            #expect(unknownType.status == 64 && unknownType.stderr.contains("--key-type must be one of p256, p384, rsa2048, rsa3072"), "\(unknownType.stderr)")
            let ceremony = try Tools.server(["ca", "init", "--pkcs11-module", SoftHSMTokens.module, "--token-label", "CardDesk CA", "--pin-file", hsm.pinFile.path,
                                             "--key-type", "rsa2048"], data: token, environment: hsm.environment)
            #expect(ceremony.ok, "\(ceremony.stderr)")
            let rootText = try Tools.run("openssl", ["x509", "-in", token.appendingPathComponent("pki/root.pem").path, "-noout", "-text"]).stdout
            #expect(rootText.contains("rsaEncryption") && rootText.contains("(2048 bit)") && rootText.contains("sha256WithRSAEncryption"), "\(rootText)")
            let other = try Tools.server(["audit", "verify"], data: token, environment: hsm.environment.merging(["CARDDESK_CA_KEYS": "sealed"]) { $1 })
            #expect(!other.ok && other.stderr.contains("PKCS#11"), "\(other.stderr)")
            // ca.keys=pkcs11 on an empty data directory: no PKI is made on the fly, the ceremony is named.
            let empty = try Tools.server(["audit", "verify"], data: folder.appendingPathComponent("empty"), environment: pkcs11Environment)
            #expect(!empty.ok && empty.stderr.contains("ca init"), "\(empty.stderr)")
        }
    }

    @Test("The token taken away: issuance (a renewal) and OCSP answer 503 with a clear message; the token back: both work again without a restart")
    func tokenAwayAndBack() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("hsm-away")
            let data = folder.appendingPathComponent("data")
            let hsm = try SoftHSMTokens(in: folder, labels: ["CardDesk CA"])
            // The test module forwards to SoftHSMv2, and pretends the token is out while the flag file exists.
            let module = URL(fileURLWithPath: Tools.serverBinary).deletingLastPathComponent().appendingPathComponent("libcarddesk-test-token.so").path
            let flag = folder.appendingPathComponent("token-out")
            let environment = hsm.environment.merging(["CARDDESK_TEST_TOKEN_MODULE": SoftHSMTokens.module, "CARDDESK_TEST_TOKEN_REMOVED_FLAG": flag.path]) { $1 }
            let ceremony = try Tools.server(["ca", "init", "--pkcs11-module", module, "--token-label", "CardDesk CA", "--pin-file", hsm.pinFile.path],
                                            data: data, environment: environment)
            #expect(ceremony.ok, "ca init: \(ceremony.stderr)")
            try OperatorCommandTests.addUser(data, environment: environment)
            let server = try ServerProcess(data: data, environment: environment)
            defer { server.signal(SIGTERM); _ = server.waitForExit() }
            let card = folder.appendingPathComponent("card.json")
            let issued = try Tools.server(["card", "issue", "--user", OperatorCommandTests.userID, "--virtual", card.path, "--expires-in-days", "30",
                                           "--public-url", server.url], data: data, environment: environment, input: "123456\n")
            #expect(issued.ok, "card issue: \(issued.stderr)")
            let pki = data.appendingPathComponent("pki")
            let status = try Tools.run(Tools.clientBinary, ["status", "--card", card.path, "--server", server.url])
            guard let serial = status.stdout.split(separator: "\n").compactMap({ line -> String? in
                guard let range = line.range(of: "serial ") else { return nil }
                return String(line[range.upperBound...].prefix { $0.isHexDigit })
            }).first else {
                Issue.record("no certificate serial in: \(status.stdout) \(status.stderr)")
                return
            }
            let request = folder.appendingPathComponent("request.der")
            let made = try Tools.run("openssl", ["ocsp", "-issuer", pki.appendingPathComponent("authentication-ca.pem").path, "-serial", "0x\(serial)",
                                                 "-no_nonce", "-reqout", request.path])
            #expect(made.ok, "\(made.stderr)")
            func postOCSP() throws -> (status: String, body: String) {
                let body = folder.appendingPathComponent("ocsp-answer")
                let sent = try Tools.run("curl", ["-s", "-o", body.path, "-w", "%{http_code}", "-H", "Content-Type: application/ocsp-request",
                                                  "--data-binary", "@\(request.path)", "\(server.url)/ocsp"])
                return (sent.stdout, String(decoding: (try? Data(contentsOf: body)) ?? Data(), as: UTF8.self))
            }

            // Out: no responder has been certified yet, so OCSP cannot answer; a renewal cannot be issued.
            FileManager.default.createFile(atPath: flag.path, contents: nil)
            let away = try postOCSP()
            #expect(away.status == "503" && away.body.contains("HSM"), "OCSP while the token is out: \(away.status) \(away.body)")
            let renewal = try Tools.run(Tools.clientBinary, ["renew", "--card", card.path, "--server", server.url], input: "123456\n")
            #expect(renewal.status == 105 && renewal.stderr.contains("HSM"), "renewal while the token is out (hsmUnavailable, 503 from the server): \(renewal.stdout) \(renewal.stderr)")

            // Back: the same server answers and renews.
            try FileManager.default.removeItem(at: flag)
            let back = try Tools.run("openssl", ["ocsp", "-issuer", pki.appendingPathComponent("authentication-ca.pem").path, "-serial", "0x\(serial)",
                                                 "-url", "\(server.url)/ocsp", "-CAfile", pki.appendingPathComponent("root.pem").path])
            #expect(back.stdout.contains(": good") && back.stderr.contains("Response verify OK"), "\(back.stdout) \(back.stderr)")
            let renewed = try Tools.run(Tools.clientBinary, ["renew", "--card", card.path, "--server", server.url], input: "123456\n")
            #expect(renewed.ok && renewed.stdout.contains("Success: certificate renewed for smartcard"), "\(renewed.stdout) \(renewed.stderr)")
            // Out again: the responder certified meanwhile still answers (the point of delegation); issuance stops.
            FileManager.default.createFile(atPath: flag.path, contents: nil)
            let delegated = try postOCSP()
            #expect(delegated.status == "200", "OCSP by the still-valid responder while the token is out: \(delegated.status)")
            let verify = try Tools.server(["audit", "verify"], data: data, environment: hsm.environment.merging(["CARDDESK_TEST_TOKEN_MODULE": SoftHSMTokens.module]) { $1 })
            #expect(verify.ok, "\(verify.stderr)")
        }
    }
}
