import Foundation
import Testing
import X509

/// The operator commands and the server, as a real user runs them, checked with independent tools:
/// OpenSSL, Python's `cryptography`, DigiCert's `pkilint`, sqlite3.
@Suite("Operator commands end to end", .serialized)
struct OperatorCommandTests {
    static let userID = "555254600106"

    static func addUser(_ data: URL, environment: [String: String] = [:]) throws {
        let result = try Tools.server(["user", "add", "--id", userID, "--given", "Jane", "--family", "Doe", "--org", "RBQ",
                                       "--role", "S0080:G0450:R5080@RBQ", "--role", "S0080:G0450:R8000@RBQ"], data: data, environment: environment)
        #expect(result.ok, "user add: \(result.stderr)")
        #expect(result.stdout.contains("Added user \(userID) (Jane Doe, RBQ) with 2 roles."))
    }

    static func issue(_ data: URL, profile: String, csr: URL, publicURL: String? = nil, environment: [String: String] = [:]) throws -> Tools.Result {
        var arguments = ["ca", "issue", "--user", userID, "--profile", profile, "--csr", csr.path]
        if let publicURL { arguments += ["--public-url", publicURL] }
        return try Tools.server(arguments, data: data, environment: environment)
    }

    /// pkilint findings at ERROR or above, as text (empty when there are none).
    static func pkilintErrors(_ linter: String, _ extra: [String], file: URL) throws -> String {
        let result = try Tools.run(linter, ["lint"] + extra + ["-s", "ERROR", file.path])
        // pkilint prints nothing when no finding reaches the threshold.
        return (result.stdout + result.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("Issued certificates parse with OpenSSL and cryptography, chain to the root, and pass pkilint", arguments: [
        ("authentication", "rsa:2048"), ("authentication", "ec:P-256"), ("signing", "rsa:2048"), ("signing", "ec:P-256"),
    ])
    func issuedCertificates(profile: String, key: String) async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("issue")
            let data = folder.appendingPathComponent("data")
            try Self.addUser(data)
            let csr = try Tools.opensslCSR(key, in: folder, name: "card")
            let issued = try Self.issue(data, profile: profile, csr: csr)
            #expect(issued.ok, "ca issue: \(issued.stderr)")
            let pem = folder.appendingPathComponent("card.pem")
            try issued.stdout.write(to: pem, atomically: true, encoding: .utf8)

            let text = try Tools.run("openssl", ["x509", "-in", pem.path, "-noout", "-text"])
            #expect(text.ok)
            #expect(text.stdout.contains("Subject: O = RBQ, OU = People, CN = 555254600106_Jane_Doe"))
            #expect(!text.stdout.contains("Chosen By Client"))
            if profile == "authentication" {
                #expect(text.stdout.contains("Digital Signature"))
                #expect(text.stdout.contains("TLS Web Client Authentication, Microsoft Smartcard Login"))
            } else {
                #expect(text.stdout.contains("Non Repudiation"))
            }
            #expect(text.stdout.contains("CA Issuers - URI:http://127.0.0.1:8080/pki/\(profile)-ca.crt"))
            #expect(text.stdout.contains("URI:http://127.0.0.1:8080/crl/\(profile).crl"))

            let python = try Tools.run("python3", ["-c", """
                import sys
                from cryptography import x509
                c = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
                print(c.subject.rfc4514_string())
                print(c.extensions.get_extension_for_class(x509.KeyUsage).critical)
                print(len(c.serial_number.to_bytes(20, 'big')))
                """, pem.path])
            #expect(python.ok, "cryptography: \(python.stderr)")
            #expect(python.stdout == "CN=555254600106_Jane_Doe,OU=People,O=RBQ\nTrue\n20\n")

            let pki = data.appendingPathComponent("pki")
            let verify = try Tools.run("openssl", ["verify", "-CAfile", pki.appendingPathComponent("root.pem").path,
                                                   "-untrusted", pki.appendingPathComponent("\(profile)-ca.pem").path, pem.path])
            #expect(verify.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(pem.path): OK", "openssl verify: \(verify.stderr)")
            // The other issuing CA must not validate it.
            let other = profile == "authentication" ? "signing" : "authentication"
            let wrong = try Tools.run("openssl", ["verify", "-CAfile", pki.appendingPathComponent("root.pem").path,
                                                  "-untrusted", pki.appendingPathComponent("\(other)-ca.pem").path, pem.path])
            #expect(!wrong.ok)

            #expect(try Self.pkilintErrors("lint_pkix_cert", [], file: pem) == "")
        }
    }

    @Test("user add grants RA roles: a role whose code the deployment names an RA role, at the organisation it covers")
    func raRoles() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let data = try Tools.temporaryFolder("ra-roles").appendingPathComponent("data")
            let agent = try Tools.server(["user", "add", "--id", "555254600901", "--given", "Rae", "--family", "Agent", "--org", "RBQ",
                                          "--role", "R8000@RBQ", "--role", "RAAGENT@RBQ", "--role", "RASPONSOR@RXH"], data: data)
            #expect(agent.ok, "user add: \(agent.stderr)")
            #expect(agent.stdout.contains("with 3 roles.\n  RA Agent for RBQ\n  Sponsor for RXH"), "\(agent.stdout)")
            // With the deployment's own code for RA Managers.
            let manager = try Tools.server(["user", "add", "--id", "555254600902", "--given", "Mo", "--family", "Manager", "--org", "RBQ",
                                            "--role", "S8000:G8000:R8001@RBQ"], data: data, environment: ["CARDDESK_RA_ROLE_MANAGER": "S8000:G8000:R8001"])
            #expect(manager.ok, "user add: \(manager.stderr)")
            #expect(manager.stdout.contains("with 1 role.\n  RA Manager for RBQ"), "\(manager.stdout)")
        }
    }

    @Test("The CA certificates and both CRLs pass pkilint")
    func caCertificatesAndCRLsLint() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("lint")
            let data = folder.appendingPathComponent("data")
            try Self.addUser(data)
            let issued = try Self.issue(data, profile: "signing", csr: try Tools.opensslCSR("ec:P-256", in: folder, name: "card"))
            let pem = folder.appendingPathComponent("card.pem")
            try issued.stdout.write(to: pem, atomically: true, encoding: .utf8)
            let serial = try Tools.serial(ofCertificate: pem)
            #expect(try Tools.server(["ca", "revoke", serial, "--reason", "keyCompromise"], data: data).ok)

            for name in ["root", "authentication-ca", "signing-ca"] {
                let file = data.appendingPathComponent("pki/\(name).pem")
                #expect(try Self.pkilintErrors("lint_pkix_cert", [], file: file) == "", "\(name)")
            }
            for profile in ["authentication", "signing"] {
                let crl = try Tools.server(["ca", "crl", "--profile", profile], data: data)
                #expect(crl.ok, "ca crl: \(crl.stderr)")
                #expect(crl.stdout.hasPrefix("-----BEGIN X509 CRL-----"))
                let file = folder.appendingPathComponent("\(profile).crl")
                try crl.stdout.write(to: file, atomically: true, encoding: .utf8)
                #expect(try Self.pkilintErrors("lint_crl", ["-t", "CRL", "-p", "PKIX"], file: file) == "", "\(profile) CRL")
                let text = try Tools.run("openssl", ["crl", "-in", file.path, "-noout", "-text", "-CAfile", data.appendingPathComponent("pki/\(profile)-ca.pem").path])
                #expect(text.stderr.contains("verify OK"), "the CRL must verify against its CA: \(text.stderr)")
                #expect(text.stdout.contains(serial) == (profile == "signing"))
            }
        }
    }

    @Test("OCSP through the server: good, then revoked with its reason after `ca revoke`; unknown serials are unknown")
    func ocspAndCRLOverHTTP() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("ocsp")
            let data = folder.appendingPathComponent("data")
            try Self.addUser(data)
            let server = try ServerProcess(data: data)
            let issued = try Self.issue(data, profile: "authentication", csr: try Tools.opensslCSR("rsa:2048", in: folder, name: "card"), publicURL: server.url)
            let pem = folder.appendingPathComponent("card.pem")
            try issued.stdout.write(to: pem, atomically: true, encoding: .utf8)
            let issuer = data.appendingPathComponent("pki/authentication-ca.pem").path
            let root = data.appendingPathComponent("pki/root.pem").path

            func ocsp(_ target: [String], hash: String = "-sha1") throws -> Tools.Result {
                try Tools.run("openssl", ["ocsp", "-issuer", issuer, hash] + target + ["-url", "\(server.url)/ocsp", "-CAfile", root, "-resp_text"])
            }
            let good = try ocsp(["-cert", pem.path])
            #expect(good.stdout.contains("\(pem.path): good"), "\(good.stdout)\(good.stderr)")
            #expect(good.stderr.contains("Response verify OK"))
            #expect(good.stdout.contains("OCSP Nonce"))

            let serial = try Tools.serial(ofCertificate: pem)
            let revoke = try Tools.server(["ca", "revoke", serial, "--reason", "keyCompromise"], data: data)
            #expect(revoke.ok, "ca revoke: \(revoke.stderr)")
            #expect(revoke.stdout.contains("Revoked authentication certificate \(serial)"))

            let responseFile = folder.appendingPathComponent("good.ocsp")
            #expect(try ocsp(["-cert", pem.path, "-respout", responseFile.path]).ok)
            #expect(try Self.pkilintErrors("lint_ocsp_response", [], file: responseFile) == "")

            let revoked = try ocsp(["-cert", pem.path], hash: "-sha256")
            #expect(revoked.stdout.contains("\(pem.path): revoked"), "\(revoked.stdout)\(revoked.stderr)")
            #expect(revoked.stdout.contains("Reason: keyCompromise"))
            #expect(revoked.stderr.contains("Response verify OK"))

            let unknown = try ocsp(["-serial", "0x1234ABCD"])
            #expect(unknown.stdout.contains("0x1234ABCD: unknown"), "\(unknown.stdout)\(unknown.stderr)")

            // The CRL at the URL the certificate names lists the serial with its reason.
            let crlFile = folder.appendingPathComponent("auth.crl")
            let download = try Tools.run("curl", ["-sf", "-o", crlFile.path, "\(server.url)/crl/authentication.crl"])
            #expect(download.ok)
            let crl = try Tools.run("openssl", ["crl", "-inform", "DER", "-in", crlFile.path, "-noout", "-text"])
            #expect(crl.stdout.contains("Serial Number: \(serial)"))
            #expect(crl.stdout.contains("Key Compromise"))
            let named = try Tools.run("openssl", ["x509", "-in", pem.path, "-noout", "-ext", "crlDistributionPoints,authorityInfoAccess"])
            #expect(named.stdout.contains("\(server.url)/crl/authentication.crl"))
            #expect(named.stdout.contains("OCSP - URI:\(server.url)/ocsp"))

            // Revoking twice is refused, with one clear line and a distinct status.
            let twice = try Tools.server(["ca", "revoke", serial, "--reason", "superseded"], data: data)
            #expect(twice.status == 72)
            #expect(twice.stderr.hasPrefix("error: Certificate \(serial) was already revoked"))
            #expect(twice.stderr.split(separator: "\n").count == 1)

            // SIGTERM: a graceful stop.
            server.signal(SIGTERM)
            #expect(server.waitForExit() == 0)
        }
    }

    @Test("Bad input is refused with one clear line, a distinct exit status, and no row written")
    func refusals() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("refuse")
            let data = folder.appendingPathComponent("data")
            try Self.addUser(data)
            let database = data.appendingPathComponent("carddesk.sqlite")
            let auditBefore = try Tools.sqlite(database, "SELECT count(*) FROM audit_events")

            // A CSR whose signature does not match: flip a byte near the end of the DER signature.
            let goodCSR = try Tools.opensslCSR("ec:P-256", in: folder, name: "good")
            let der = folder.appendingPathComponent("good.der")
            #expect(try Tools.run("openssl", ["req", "-in", goodCSR.path, "-outform", "DER", "-out", der.path]).ok)
            var bytes = try Data(contentsOf: der)
            bytes[bytes.count - 2] ^= 0x5A
            let badSignature = folder.appendingPathComponent("bad-signature.der")
            try bytes.write(to: badSignature)
            let truncated = folder.appendingPathComponent("truncated.der")
            try Data(bytes.prefix(bytes.count / 2)).write(to: truncated)

            let cases: [(String, [String], Int32, String)] = [
                ("bad signature", ["ca", "issue", "--user", Self.userID, "--profile", "signing", "--csr", badSignature.path], 69, "signature does not match"),
                ("RSA-1024", ["ca", "issue", "--user", Self.userID, "--profile", "signing", "--csr", try Tools.opensslCSR("rsa:1024", in: folder, name: "weak").path], 70, "RSA-1024"),
                ("P-384", ["ca", "issue", "--user", Self.userID, "--profile", "signing", "--csr", try Tools.opensslCSR("ec:P-384", in: folder, name: "p384").path], 70, "RSA-2048 or ECDSA P-256"),
                ("malformed DER", ["ca", "issue", "--user", Self.userID, "--profile", "signing", "--csr", truncated.path], 68, "not a valid PKCS#10"),
                ("unknown user", ["ca", "issue", "--user", "999999999999", "--profile", "signing", "--csr", goodCSR.path], 65, "No user with ID 999999999999"),
                ("bad profile", ["ca", "issue", "--user", Self.userID, "--profile", "email", "--csr", goodCSR.path], 64, "use authentication or signing"),
                ("missing file", ["ca", "issue", "--user", Self.userID, "--profile", "signing", "--csr", "/nonexistent.csr"], 64, "Cannot read"),
                ("unknown serial", ["ca", "revoke", "ABCDEF", "--reason", "keyCompromise"], 71, "No certificate with serial ABCDEF"),
                ("bad reason", ["ca", "revoke", "ABCDEF", "--reason", "lost"], 64, "Unknown revocation reason"),
                ("bad user ID", ["user", "add", "--id", "12", "--given", "A", "--family", "B", "--org", "RBQ", "--role", "R8000@RBQ"], 64, "exactly 12 digits"),
                ("duplicate user", ["user", "add", "--id", Self.userID, "--given", "A", "--family", "B", "--org", "RBQ", "--role", "R8000@RBQ"], 66, "already exists"),
                ("bad role", ["user", "add", "--id", "555254600107", "--given", "A", "--family", "B", "--org", "RBQ", "--role", "nonsense"], 64, "ROLECODE@ORG"),
            ]
            for (what, arguments, status, message) in cases {
                let result = try Tools.server(arguments, data: data)
                #expect(result.status == status, "\(what): status \(result.status), \(result.stderr)")
                #expect(result.stderr.hasPrefix("error: ") && result.stderr.contains(message), "\(what): \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(what): one line")
                #expect(result.stdout.isEmpty, "\(what): nothing on standard output")
            }
            #expect(try Tools.sqlite(database, "SELECT count(*) FROM certificates") == "0")
            #expect(try Tools.sqlite(database, "SELECT count(*) FROM users") == "1")
            #expect(try Tools.sqlite(database, "SELECT count(*) FROM audit_events") == auditBefore)
        }
    }

    @Test("A damaged data directory is reported clearly, never silently replaced")
    func damagedDataDirectory() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("damaged")
            let data = folder.appendingPathComponent("data")
            try Self.addUser(data)
            let issued = try Self.issue(data, profile: "signing", csr: try Tools.opensslCSR("ec:P-256", in: folder, name: "card"))
            #expect(issued.ok)

            try FileManager.default.removeItem(at: data.appendingPathComponent("pki/signing-ca.pem"))
            let missing = try Tools.server(["ca", "crl", "--profile", "signing"], data: data)
            #expect(missing.status == 73)
            #expect(missing.stderr.contains("signing-ca.pem is missing"))

            try FileManager.default.removeItem(at: data.appendingPathComponent("pki"))
            let noPKI = try Tools.server(["audit", "verify"], data: data)
            #expect(noPKI.status == 73)
            #expect(noPKI.stderr.contains("holds issued certificates"))
            #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("pki").path))

            let wrongKey = try Tools.server(["audit", "verify"], data: try {
                let other = folder.appendingPathComponent("other")
                try Self.addUser(other)
                return other
            }(), environment: ["CARDDESK_MASTER_KEY": Data(repeating: 7, count: 32).base64EncodedString()])
            #expect(wrongKey.status == 74, "\(wrongKey.stderr)")
            #expect(wrongKey.stderr.contains("master key does not match"))
        }
    }
}
