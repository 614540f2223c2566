import Foundation
import Testing

@Suite("Crashes and the audit log", .serialized)
struct CrashAndAuditTests {
    /// Issuing processes are SIGKILLed at random moments while a server serves the same store; the server is
    /// SIGKILLed too and restarted. Every certificate that a process returned (printed) must be stored and answered
    /// `good` by OCSP, every stored certificate must have its audit entry, and the chain must verify.
    @Test("SIGKILL during a loop of issuances leaves nothing returned-but-unstored, and the audit chain intact")
    func killDuringIssuance() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("kill")
            let data = folder.appendingPathComponent("data")
            try OperatorCommandTests.addUser(data)
            let csr = try Tools.opensslCSR("ec:P-256", in: folder, name: "card")
            var server: ServerProcess? = try ServerProcess(data: data)
            var generator = SystemRandomNumberGenerator()
            var returned: [String] = []
            var killed = 0
            // How long one issuance takes on this machine now (a loaded machine runs the suite in parallel): the kills
            // fall at random within 1.5 times that, so that some issuances are killed mid-way and some complete
            // (a fixed half second killed every one of them under the full suite's load).
            var window = 0.5

            for round in 0..<30 {
                if round == 15 {
                    server?.signal(SIGKILL)
                    _ = server?.waitForExit()
                    server = nil
                }
                let out = folder.appendingPathComponent("issue-\(round).pem")
                FileManager.default.createFile(atPath: out.path, contents: nil)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Tools.serverBinary)
                process.arguments = ["ca", "issue", "--user", OperatorCommandTests.userID, "--profile", round % 2 == 0 ? "authentication" : "signing",
                                     "--csr", csr.path, "--data", data.path]
                process.standardOutput = try FileHandle(forWritingTo: out)
                process.standardError = FileHandle.nullDevice
                let started = Date()
                try process.run()
                if round == 0 {
                    // The first runs to the end: it sets the window.
                    process.waitUntilExit()
                    window = max(window, Date().timeIntervalSince(started) * 1.5)
                } else {
                    Thread.sleep(forTimeInterval: Double.random(in: 0.0...window, using: &generator))
                }
                if process.isRunning {
                    kill(process.processIdentifier, SIGKILL)
                    killed += 1
                }
                process.waitUntilExit()
                let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
                if text.contains("-----END CERTIFICATE-----") {
                    let serial = try Tools.serial(ofCertificate: out)
                    returned.append(serial)
                }
            }
            #expect(killed > 0, "some issuances must have been killed mid-way")
            #expect(!returned.isEmpty, "some issuances must have completed")

            let database = data.appendingPathComponent("carddesk.sqlite")
            let stored = Set(try Tools.sqlite(database, "SELECT serial FROM certificates").split(separator: "\n").map(String.init))
            for serial in returned {
                #expect(stored.contains(serial), "certificate \(serial) was returned but not stored")
            }
            // Nothing half-written: each stored certificate has exactly its issuance audit entry.
            #expect(try Tools.sqlite(database, "SELECT count(*) FROM audit_events WHERE action = 'certificate.issue'") == String(stored.count))

            let verify = try Tools.server(["audit", "verify"], data: data)
            #expect(verify.ok, "audit verify: \(verify.stderr)")
            #expect(verify.stdout.contains("Audit log intact"))

            // The restarted server answers for every returned certificate.
            let restarted = try ServerProcess(data: data)
            for (index, serial) in returned.enumerated() {
                let profile = try Tools.sqlite(database, "SELECT profile FROM certificates WHERE serial = '\(serial)'")
                let ocsp = try Tools.run("openssl", ["ocsp", "-issuer", data.appendingPathComponent("pki/\(profile)-ca.pem").path,
                                                     "-serial", "0x\(serial)", "-url", "\(restarted.url)/ocsp", "-noverify"])
                #expect(ocsp.stdout.contains(": good"), "returned certificate \(index) \(serial): \(ocsp.stdout)\(ocsp.stderr)")
            }
            restarted.signal(SIGTERM)
            #expect(restarted.waitForExit() == 0)
        }
    }

    @Test("Editing one audit row by hand makes `audit verify` fail and name it")
    func tamperedAuditRow() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let folder = try Tools.temporaryFolder("audit")
            let data = folder.appendingPathComponent("data")
            try OperatorCommandTests.addUser(data)
            let csr = try Tools.opensslCSR("ec:P-256", in: folder, name: "card")
            for profile in ["authentication", "signing", "signing"] {
                #expect(try OperatorCommandTests.issue(data, profile: profile, csr: csr).ok)
            }
            let intact = try Tools.server(["audit", "verify"], data: data)
            #expect(intact.ok)
            // pki.create, user.add, three issuances.
            #expect(intact.stdout.contains("Audit log intact: 5 entries"))
            // The head, kept elsewhere, anchors the log: it verifies now, and a wrong anchor is caught.
            let head = try Tools.server(["audit", "head"], data: data)
            let anchor = head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(head.ok && anchor.hasPrefix("5:") && anchor.count == 66, "audit head: \(head.stdout)\(head.stderr)")
            let anchored = try Tools.server(["audit", "verify", "--anchor", anchor], data: data)
            #expect(anchored.ok && anchored.stdout.contains("anchored head 5 matches"), "\(anchored.stdout)\(anchored.stderr)")
            let wrong = try Tools.server(["audit", "verify", "--anchor", "3:" + String(repeating: "ab", count: 32)], data: data)
            #expect(wrong.status == 76 && wrong.stderr.contains("anchored head"), "\(wrong.stderr)")
            let malformed = try Tools.server(["audit", "verify", "--anchor", "three"], data: data)
            #expect(malformed.status == 64 && malformed.stderr.contains("is not an audit head"), "\(malformed.stderr)")

            let database = data.appendingPathComponent("carddesk.sqlite")
            // The database refuses the edit while its guard is in place…
            let refused = try Tools.run("sqlite3", [database.path, "UPDATE audit_events SET actor = 'nobody' WHERE seq = 3"])
            #expect(refused.stderr.contains("append-only"))
            // …so the attacker drops it first, then changes entry 3.
            _ = try Tools.sqlite(database, "DROP TRIGGER audit_events_no_update")
            _ = try Tools.sqlite(database, "UPDATE audit_events SET details = replace(details, 'profile=signing', 'profile=authentication') WHERE seq = 4")

            let broken = try Tools.server(["audit", "verify"], data: data)
            #expect(broken.status == 76)
            #expect(broken.stderr.contains("The audit log is broken at entry 4"), "\(broken.stderr)")
            #expect(broken.stderr.contains("changed"))
        }
    }

    @Test("Commands and the server work on a real PostgreSQL server", .enabled(if: ProcessInfo.processInfo.environment["CARDDESK_TEST_POSTGRES_URL"] != nil))
    func postgres() async throws {
        // Waits for programs: on a thread of its own, not one of the cooperative threads other tests' servers need.
        try await Tools.offCooperativePool {
            let url = try Tools.freshPostgresDatabase("carddesk_e2e")

            let folder = try Tools.temporaryFolder("pg")
            let data = folder.appendingPathComponent("data")
            let add = try Tools.server(["user", "add", "--database-url", url, "--id", OperatorCommandTests.userID, "--given", "Jane", "--family", "Doe",
                                        "--org", "RBQ", "--role", "S0080:G0450:R5080@RBQ"], data: data)
            #expect(add.ok, "\(add.stderr)")
            let issued = try Tools.server(["ca", "issue", "--database-url", url, "--user", OperatorCommandTests.userID, "--profile", "signing",
                                           "--csr", try Tools.opensslCSR("rsa:2048", in: folder, name: "card").path], data: data)
            #expect(issued.ok, "\(issued.stderr)")
            #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("carddesk.sqlite").path), "no SQLite file when PostgreSQL is used")
            let count = try Tools.run("psql", [url, "-tA", "-c", "SELECT count(*) FROM certificates"])
            #expect(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

            let server = try ServerProcess(data: data, extraArguments: ["--database-url", url])
            let health = try Tools.run("curl", ["-sf", "\(server.url)/health"])
            #expect(health.stdout.contains(#""database":"postgresql""#))
            server.signal(SIGTERM)
            #expect(server.waitForExit() == 0)
            let verify = try Tools.server(["audit", "verify", "--database-url", url], data: data)
            #expect(verify.stdout.contains("Audit log intact: 3 entries"), "\(verify.stdout)\(verify.stderr)")
        }
    }
}
