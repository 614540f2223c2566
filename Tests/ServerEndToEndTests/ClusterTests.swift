import CardAgent
import CardDeskCore
import CardDeskServerKit
import Foundation
import Logging
import Smartcard
import Synchronization
import Testing
import VirtualSmartcard

/// Counts shared by the renewal tasks.
final class Tally: Sendable {
    let completed = Atomic<Int>(0)
    let reruns = Atomic<Int>(0)
    let killed = Atomic<Bool>(false)
}

/// Issue 12: several instances on one PostgreSQL behind haproxy (scripts/cluster-start); any instance answers any
/// request, and clients repeat a step on another when theirs goes away.
@Suite("Two instances behind haproxy on one PostgreSQL", .serialized)
struct ClusterTests {
    struct Cluster {
        let url: String
        let directory: String

        init(databaseURL: String) throws {
            let started = try Tools.run(Tools.package.appendingPathComponent("scripts/cluster-start").path, ["--instances", "2", "--database-url", databaseURL],
                                        environment: ["CARDDESK_SERVER_BIN": Tools.serverBinary, "CARDDESK_RATE_LIMIT_PERCENT": "0"])
            guard started.ok else { throw ToolError("cluster-start: \(started.stderr)") }
            func value(_ name: String) -> String? {
                started.stdout.split(separator: "\n").first { $0.hasPrefix("export \(name)=") }
                    .map { String($0.dropFirst("export \(name)=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "'")) }
            }
            guard let url = value("CARDDESK_CLUSTER_URL"), let directory = value("CARDDESK_CLUSTER_DIR") else { throw ToolError("cluster-start printed: \(started.stdout)") }
            self.url = url
            self.directory = directory
        }

        func pid(_ instance: Int) throws -> Int32 {
            guard let pid = Int32(try String(contentsOfFile: "\(directory)/instance-\(instance).pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw ToolError("no PID for instance \(instance)")
            }
            return pid
        }

        func log(_ instance: Int) -> String { (try? String(contentsOfFile: "\(directory)/instance-\(instance).log", encoding: .utf8)) ?? "" }

        func stop() { _ = try? Tools.run(Tools.package.appendingPathComponent("scripts/cluster-stop").path, [directory]) }
    }

    @Test("200 renewals across two instances, one SIGKILLed mid-way: every renewal completes, no duplicate serial, one valid certificate per user and profile, the audit chain verifies, and the killed instance rejoins",
          .enabled(if: ProcessInfo.processInfo.environment["CARDDESK_TEST_POSTGRES_URL"] != nil))
    func renewalsSurviveAnInstance() async throws {
        let database = try Tools.freshPostgresDatabase("carddesk_cluster")
        let cluster = try Cluster(databaseURL: database)
        defer { cluster.stop() }
        let data = URL(fileURLWithPath: cluster.directory).appendingPathComponent("data")
        let cards = URL(fileURLWithPath: cluster.directory).appendingPathComponent("cards")
        try FileManager.default.createDirectory(at: cards, withIntermediateDirectories: true)

        // 200 card holders with a card each, due for renewal (30 days left): issued by an operator's process on the
        // cluster's store and PKI, as an RA would.
        let count = 200
        var logger = Logger(label: "cluster-test")
        logger.logLevel = .error
        let settings = try await ServerSettings.resolve(
            flags: ["data": data.path, "database.url": database, "public.url": cluster.url], environment: [:]
        )
        let issuing = try await CardDeskInstance.open(settings, logger: logger)
        var files: [URL] = []
        for index in 0..<count {
            let user = try User(id: try UserID(String(format: "55530%07d", index)), givenName: "Card", familyName: "Holder", organisation: "RBQ",
                                roles: [try Role(parsing: "R8000@RBQ")])
            try await issuing.store.addUser(user, audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:\(user.id)", time: issuing.clock.now()))
            let file = cards.appendingPathComponent("card-\(index).json")
            _ = try await issuing.cardIssuer.issueVirtualCard(userID: user.id, file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: 30, actor: "test")
            files.append(file)
        }
        await issuing.close()

        // Renewals through haproxy, 8 at once; after 60, instance 1 is SIGKILLed. A renewal that still fails after
        // the client's own repeats is run again, as its holder would.
        let client = ServerClient(baseURL: URL(string: cluster.url)!)
        let tally = Tally()
        let cardFiles = files
        let killedPID = try cluster.pid(1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func add(_ index: Int) {
                group.addTask {
                    let card = PIVCardSession(transport: VirtualPIVCard(file: cardFiles[index]))
                    var attempt = 0
                    while true {
                        do {
                            try await RenewalClient(server: client, card: card).renew(passcode: "123456") { _, _ in }
                            break
                        } catch {
                            attempt += 1
                            tally.reruns.add(1, ordering: .relaxed)
                            if attempt >= 3 { throw ToolError("card \(index): \(error)") }
                        }
                    }
                    if tally.completed.add(1, ordering: .relaxed).newValue == 60, !tally.killed.exchange(true, ordering: .relaxed) {
                        kill(killedPID, SIGKILL)
                    }
                }
            }
            while next < min(8, count) { add(next); next += 1 }
            while try await group.next() != nil {
                if next < count { add(next); next += 1 }
            }
        }
        let (completed, reruns, killed) = (tally.completed.load(ordering: .relaxed), tally.reruns.load(ordering: .relaxed), tally.killed.load(ordering: .relaxed))
        #expect(completed == count)
        #expect(killed)
        // Both instances carried renewals: the killed one was in the middle of the work, not idle.
        #expect(cluster.log(1).contains("/api/v1/renewals") && cluster.log(2).contains("/api/v1/renewals"))
        print("cluster test: \(completed) renewals, \(reruns) run again after the kill")

        // The store: no serial twice, one valid certificate per holder and profile, and the cards hold exactly those.
        func sql(_ query: String) throws -> String {
            let result = try Tools.run("psql", [database, "-tA", "-c", query])
            guard result.ok else { throw ToolError("psql: \(result.stderr)") }
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try sql("SELECT count(*) - count(DISTINCT serial) FROM certificates") == "0")
        #expect(try sql("SELECT count(*) FROM certificates WHERE status = 'good'") == String(2 * count))
        #expect(try sql("SELECT count(*) FROM (SELECT user_id, profile FROM certificates WHERE status = 'good' GROUP BY user_id, profile HAVING count(*) <> 1) AS t") == "0")
        #expect(try sql("SELECT count(*) FROM certificates WHERE status = 'revoked' AND revocation_reason = 4") == String(2 * count), "every old certificate superseded")
        for (index, file) in files.enumerated() where index % 20 == 0 {
            let card = PIVCardSession(transport: VirtualPIVCard(file: file))
            for slot in [CardSlot.authentication, .signing] {
                let certificate = try #require(try await card.certificate(in: slot))
                let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes)).hex
                #expect(try sql("SELECT status FROM certificates WHERE serial = '\(serial)'") == "good", "card \(index) \(slot)")
            }
        }
        let verify = try Tools.server(["audit", "verify", "--database-url", database], data: data)
        #expect(verify.ok && verify.stdout.contains("Audit log intact"), "\(verify.stdout)\(verify.stderr)")

        // The killed instance starts again and takes requests once haproxy sees it healthy.
        let restarted = try Tools.run("bash", ["\(cluster.directory)/instance.sh", "1"])
        #expect(restarted.ok, "\(restarted.stderr)")
        let before = cluster.log(1).count
        var rejoined = false
        for _ in 0..<60 where !rejoined {
            try await Task.sleep(for: .milliseconds(250))
            _ = try Tools.run("curl", ["-sf", "\(cluster.url)/api/v1/agents/presence"])
            rejoined = cluster.log(1).dropFirst(before).contains("agents/presence")
        }
        #expect(rejoined, "instance 1 answers through haproxy again")
    }
}
