import CardAgent
import CardDeskCore
import CardDeskServerKit
import CardDeskStore
import CertificateAuthority
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import SQLKit
import SQLiteKit
import Smartcard
import Synchronization
import VirtualSmartcard
import X509

/// `carddesk-bench scale`: how the server copes with a country's cards (issue 12, item 5).
///
///     carddesk-bench scale [--holders 10000,100000,1000000] [--ocsp-holders 1300000] [--sample 400]
///         [--concurrency 8] [--server-binary PATH] [--keep DIR]
///
/// Card holders are loaded in bulk straight into the server's SQLite database (a user, a card and two certificates
/// each, really signed by the CA, expiring over the next three years), not through the API. At each size a sample of
/// card holders with virtual cards due for renewal renews through a separate `carddesk-server serve` process (release
/// build beside this one), 8 at once: renewals per second and the server's resident memory. Last, with
/// `--ocsp-holders` loaded (1.3 million: 2.6 million certificates), OCSP throughput over random certificates with wrk,
/// against the same server's `/health`, and the server's memory after it.
enum ScaleScenario {
    struct Options {
        var holders = [10_000, 100_000, 1_000_000]
        var ocspHolders: Int? = 1_300_000
        var sample = 400
        var concurrency = 8
        var serverBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("carddesk-server").path
        var keep: URL?

        init(_ arguments: ArraySlice<String>) throws {
            var iterator = arguments.makeIterator()
            while let flag = iterator.next() {
                guard let value = iterator.next() else { throw CardDeskError(.invalidInput, "\(flag) needs a value") }
                switch flag {
                case "--holders":
                    holders = try value.split(separator: ",").map { try Benchmark.Options.count(flag, String($0)) }
                    guard holders == holders.sorted() else { throw CardDeskError(.invalidInput, "--holders takes growing sizes, for example 10000,100000") }
                case "--ocsp-holders": ocspHolders = value == "none" ? nil : try Benchmark.Options.count(flag, value)
                case "--sample": sample = try Benchmark.Options.count(flag, value)
                case "--concurrency": concurrency = try Benchmark.Options.count(flag, value)
                case "--server-binary": serverBinary = value
                case "--keep": keep = URL(fileURLWithPath: value)
                default: throw CardDeskError(.invalidInput, "unknown option \(flag); use --holders, --ocsp-holders, --sample, --concurrency, --server-binary, --keep")
                }
            }
        }
    }

    static func run(_ options: Options) async throws {
        guard FileManager.default.isExecutableFile(atPath: options.serverBinary) else {
            throw CardDeskError(.configuration, "no carddesk-server at \(options.serverBinary): build it (swift build -c release) or give --server-binary")
        }
        let folder = options.keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-scale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { if options.keep == nil { try? FileManager.default.removeItem(at: folder) } }
        let data = folder.appendingPathComponent("data")
        var logger = Logger(label: "carddesk-bench")
        logger.logLevel = .error
        let settings = try await ServerSettings.resolve(flags: ["data": data.path, "rate.limit.percent": "0"], environment: [:])
        print("carddesk-bench scale: SQLite in \(data.path); server \(options.serverBinary); \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("holders  certificates  load/s    renewals/s  ratio to first  server RSS MB (after, peak)  database MB")

        var loaded = try await loadedHolders(settings, logger: logger)
        var first: Double?
        var cpu: [(server: Double, client: Double)] = []
        for (round, target) in options.holders.enumerated() {
            let loadRate = try await bulkLoad(from: loaded, to: target, settings: settings, logger: logger)
            loaded = max(loaded, target)
            let cards = try await sampleCards(options.sample, round: round, folder: folder, settings: settings, logger: logger)
            let server = try await ServerProcess(binary: options.serverBinary, data: data)
            let rate: Double
            let serverCPUBefore = server.cpuSeconds(), clientCPUBefore = Benchmark.processCPUSeconds()
            do {
                let client = ServerClient(baseURL: server.url, transport: BenchTransport())
                rate = try await Benchmark.measure(count: cards.count, concurrency: options.concurrency) { index in
                    try await RenewalClient(server: client, card: cards[index]).renew(passcode: "123456") { _, _ in }
                }
            } catch {
                server.stop()
                throw error
            }
            cpu.append((server: (server.cpuSeconds() - serverCPUBefore) / Double(cards.count), client: (Benchmark.processCPUSeconds() - clientCPUBefore) / Double(cards.count)))
            let memory = server.memory()
            server.stop()
            first = first ?? rate
            let certificates = try await count("certificates", settings: settings, logger: logger)
            print(String(format: "%8d  %12d  %6.0f    %10.1f  %14.2f  %12.1f, %5.1f  %19.0f", loaded, certificates, loadRate, rate, rate / (first ?? rate),
                         memory.rss, memory.peak, databaseMegabytes(data)))
        }
        print("CPU time per renewal, ms (server process; this client with its virtual cards): " + cpu.map { String(format: "%.2f; %.2f", $0.server * 1000, $0.client * 1000) }.joined(separator: " | "))

        guard let ocspHolders = options.ocspHolders else { return }
        let loadRate = try await bulkLoad(from: loaded, to: ocspHolders, settings: settings, logger: logger)
        loaded = max(loaded, ocspHolders)
        let certificates = try await count("certificates", settings: settings, logger: logger)
        print(String(format: "OCSP with %d certificates stored (%d holders; loaded at %.0f holders/s, database %.0f MB):", certificates, loaded, loadRate, databaseMegabytes(data)))
        try await ocsp(settings: settings, logger: logger, folder: folder, serverBinary: options.serverBinary, data: data)
    }

    // MARK: - Bulk load

    /// Certificates are made by the real CA (prepare checks the request, issue signs) with a storage that keeps them
    /// in memory; they are then written in big transactions, many rows per statement.
    final class Collector: CertificateAuthorityStorage {
        let records = Mutex<[CertificateRecord]>([])

        func user(id: UserID) async throws -> User? {
            try User(id: id, givenName: "Card", familyName: "Holder", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")])
        }

        func recordIssuance(_ certificate: CertificateRecord, audit: AuditEvent, answer: PresignedOCSPAnswer?, step: RenewalStepWrite?) async throws {
            records.withLock { $0.append(certificate) }
        }

        func revoke(
            serial: SerialNumber, reason: RevocationReason, at time: Timestamp, supersededBy: SerialNumber?, byRenewal: String?, audit: AuditEvent,
            answer: PresignedOCSPAnswer?, step: RenewalStepWrite?
        ) async throws -> CertificateRecord {
            throw CardDeskError(.internalFailure, "the bulk load revokes nothing")
        }

        func certificate(serial: SerialNumber) async throws -> CertificateRecord? {
            records.withLock { $0.first { $0.serial == serial } }
        }

        func revokedCertificates(profile: CertificateProfileKind) async throws -> [RevokedCertificate] { [] }

        func nextCRLNumber(profile: CertificateProfileKind) async throws -> Int64 { 1 }
    }

    static func holderID(_ index: Int) throws -> UserID { try UserID(String(format: "7%011d", index)) }

    static func loadedHolders(_ settings: ServerSettings, logger: Logger) async throws -> Int {
        let instance = try await CardDeskInstance.open(settings, logger: logger)
        await instance.close()
        return try await withDatabase(settings, logger: logger) { db in
            try await db.raw("SELECT count(*) AS n FROM users WHERE id LIKE '7%'").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    /// Loads holders `from..<to`; answers holders per second.
    static func bulkLoad(from: Int, to: Int, settings: ServerSettings, logger: Logger) async throws -> Double {
        guard to > from else { return 0 }
        let instance = try await CardDeskInstance.open(settings, logger: logger)
        defer { Task { await instance.close() } }
        let collector = Collector()
        let authority = CertificateAuthority(
            hierarchy: instance.authority.hierarchy, profiles: instance.authority.profiles, urls: instance.authority.urls,
            storage: collector, clock: instance.clock
        )
        // Holders' keys do not matter to the server's load: a pool of requests, each checked as a card's would be.
        let csrs = try Benchmark.requests(64).map(CertificateRequestCheck.parse)
        let start = ContinuousClock.now
        let chunk = 5_000
        var next = from
        while next < to {
            let range = next..<min(next + chunk, to)
            // Two holders' certificates in flight per core.
            _ = try await Benchmark.measure(count: range.count, concurrency: 4) { offset in
                let index = range.lowerBound + offset
                let id = try holderID(index)
                for (number, profile) in [CertificateProfileKind.authentication, .signing].enumerated() {
                    // Spread over the next three years, as a country's cards fall due.
                    let days = 91 + (index * 7 + number) % 1_000
                    let prepared = try await authority.prepare(userID: id, profile: profile, csr: csrs[(index + number) % csrs.count], validityDays: days)
                    _ = try await authority.issue(prepared, actor: "bulk-load", cardSerial: String(format: "BULK%012d", index))
                }
            }
            let records = collector.records.withLock { records in
                defer { records.removeAll(keepingCapacity: true) }
                return records
            }
            try await write(range, records: records, settings: settings, logger: logger)
            next = range.upperBound
        }
        let elapsed = ContinuousClock.now - start
        return Double(to - from) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    static func write(_ holders: Range<Int>, records: [CertificateRecord], settings: ServerSettings, logger: Logger) async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await withDatabase(settings, logger: logger) { db in
            try await db.raw("BEGIN IMMEDIATE").run()
            do {
                for part in stride(from: holders.lowerBound, to: holders.upperBound, by: 500) {
                    let indices = part..<min(part + 500, holders.upperBound)
                    var users = db.insert(into: "users").columns("id", "given_name", "family_name", "organisation", "status", "created_at")
                    var roles = db.insert(into: "user_roles").columns("user_id", "position", "role_code", "organisation")
                    var cards = db.insert(into: "cards").columns("serial", "user_id", "status", "created_at", "key_algorithm")
                    for index in indices {
                        let id = try holderID(index).rawValue
                        users = users.values([id, "Card", "Holder", "RBQ", "active", now] as [any Encodable & Sendable])
                        roles = roles.values([id, 0, "R8000", "RBQ"] as [any Encodable & Sendable])
                        cards = cards.values([String(format: "BULK%012d", index), id, "active", now, "p256"] as [any Encodable & Sendable])
                    }
                    try await users.run()
                    try await roles.run()
                    try await cards.run()
                }
                for start in stride(from: 0, to: records.count, by: 500) {
                    var insert = db.insert(into: "certificates").columns(
                        "serial", "profile", "user_id", "card_serial", "subject", "not_before", "not_after", "status", "der", "issued_at"
                    )
                    for record in records[start..<min(start + 500, records.count)] {
                        insert = insert.values([
                            record.serial.hex, record.profile.rawValue, record.userID.rawValue, record.cardSerial, record.subject,
                            record.notBefore.millisecondsSince1970, record.notAfter.millisecondsSince1970, "good", Data(record.der), now,
                        ] as [any Encodable & Sendable])
                    }
                    try await insert.run()
                }
                try await db.raw("COMMIT").run()
            } catch {
                try? await db.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    static func withDatabase<R: Sendable>(_ settings: ServerSettings, logger: Logger, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        guard case .sqlite(let path) = settings.database else {
            throw CardDeskError(.configuration, "the scale bench loads SQLite only")
        }
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        do {
            let db = connection.sql()
            try await db.raw("PRAGMA busy_timeout = 30000").run()
            let result = try await body(db)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    static func count(_ table: String, settings: ServerSettings, logger: Logger) async throws -> Int {
        try await withDatabase(settings, logger: logger) { db in
            try await db.raw(SQLQueryString("SELECT count(*) AS n FROM \(unsafeRaw: table)")).first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    static func databaseMegabytes(_ data: URL) -> Double {
        ["carddesk.sqlite", "carddesk.sqlite-wal"].reduce(0.0) { total, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: data.appendingPathComponent(name).path)[.size] as? Int) ?? 0
            return total + Double(size) / 1_048_576
        }
    }

    // MARK: - Sample cards, renewed

    /// Card holders with virtual cards whose certificates are due (30 days left), issued as an RA would.
    static func sampleCards(_ count: Int, round: Int, folder: URL, settings: ServerSettings, logger: Logger) async throws -> [PIVCardSession] {
        let instance = try await CardDeskInstance.open(settings, logger: logger)
        defer { Task { await instance.close() } }
        let cards = folder.appendingPathComponent("cards-\(round)")
        try FileManager.default.createDirectory(at: cards, withIntermediateDirectories: true)
        return try await withThrowingTaskGroup(of: PIVCardSession.self) { group in
            for index in 0..<count {
                group.addTask {
                    let id = try UserID(String(format: "8%05d%06d", round, index))
                    let user = try User(id: id, givenName: "Sample", familyName: "Holder", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")])
                    try await instance.store.addUser(user, audit: AuditEvent(action: .userAdd, actor: "bench", subject: "user:\(id)", time: instance.clock.now()))
                    let file = cards.appendingPathComponent("\(id).json")
                    _ = try await instance.cardIssuer.issueVirtualCard(userID: id, file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: 30, actor: "bench")
                    return PIVCardSession(transport: try VirtualPIVCard.inMemory(copying: file))
                }
            }
            var sessions: [PIVCardSession] = []
            for try await session in group { sessions.append(session) }
            return sessions
        }
    }

    // MARK: - OCSP

    static func ocsp(settings: ServerSettings, logger: Logger, folder: URL, serverBinary: String, data: URL) async throws {
        guard let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            print("  OCSP: skipped (wrk is not installed: apt-get install wrk, or run scripts/bench-peers once)")
            return
        }
        // 20,000 random stored certificates, asked about over GET (RFC 5019), one at random per request.
        let instance = try await CardDeskInstance.open(settings, logger: logger)
        let hierarchy = instance.authority.hierarchy
        await instance.close()
        let rows = try await withDatabase(settings, logger: logger) { db in
            try await db.raw("SELECT serial, profile FROM certificates WHERE rowid IN (SELECT abs(random()) % (SELECT max(rowid) FROM certificates) + 1 FROM certificates LIMIT 20000)").all()
        }
        var paths: [String] = []
        for row in rows {
            let serial = try SerialNumber(hex: try row.decode(column: "serial", as: String.self))
            guard let profile = CertificateProfileKind(rawValue: try row.decode(column: "profile", as: String.self)) else { continue }
            let request = try OCSPRequest(certIDs: [try OCSPCertID(serial: serial, issuer: hierarchy.issuer(profile).certificate)])
            let encoded = Data(try request.derEncoded).base64EncodedString()
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            paths.append("/ocsp/" + encoded)
        }
        let pathFile = folder.appendingPathComponent("ocsp-paths.txt")
        try paths.joined(separator: "\n").write(to: pathFile, atomically: true, encoding: .utf8)
        let load = """
            local paths = {}
            for line in io.lines("\(pathFile.path)") do paths[#paths + 1] = line end
            """
        // First pass: each of wrk's two threads walks half of the certificates in turn (every one asked at least once,
        // so its answer is signed and kept); then at random, where every answer was signed ahead.
        let walk = folder.appendingPathComponent("ocsp-walk.lua")
        try (load + """

            local threads = 0
            function setup(thread) thread:set("first", threads * math.floor(#paths / 2)); threads = threads + 1 end
            function init(args) i = first or 0 end
            request = function() i = i + 1; return wrk.format("GET", paths[(i % #paths) + 1]) end
            """).write(to: walk, atomically: true, encoding: .utf8)
        let script = folder.appendingPathComponent("ocsp-random.lua")
        try (load + """

            math.randomseed(os.time())
            request = function() return wrk.format("GET", paths[math.random(#paths)]) end
            """).write(to: script, atomically: true, encoding: .utf8)

        let server = try await ServerProcess(binary: serverBinary, data: data)
        defer { server.stop() }
        let idle = server.memory()
        func rate(_ arguments: [String]) throws -> Double {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: wrk)
            process.arguments = ["-t2", "-c32", "-d10s"] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard !output.contains("Non-2xx"), let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
                  let value = Double(line.split(separator: " ").last ?? "") else {
                throw CardDeskError(.internalFailure, "wrk: \(output)")
            }
            return value
        }
        let health = try rate([server.url.absoluteString + "/health"])
        let cold = try rate(["-s", walk.path, server.url.absoluteString])
        let warm = try rate(["-s", script.path, server.url.absoluteString])
        let after = server.memory()
        print(String(format: "  GET /health (baseline)                         %10.0f /s", health))
        print(String(format: "  OCSP, 20,000 certificates in turn, first ask   %10.0f /s   ratio to /health %.2f", cold, cold / health))
        print(String(format: "  OCSP, the same at random (answers kept)        %10.0f /s   ratio to /health %.2f", warm, warm / health))
        print(String(format: "  server RSS: %.1f MB at start, %.1f MB after (peak %.1f MB)", idle.rss, after.rss, after.peak))
    }

    // MARK: - The server process

    /// `carddesk-server serve` on the data directory, on a free port; stopped with SIGTERM.
    final class ServerProcess {
        let process = Process()
        let url: URL

        init(binary: String, data: URL) async throws {
            let port = try freePort()
            url = URL(string: "http://127.0.0.1:\(port)")!
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--data", data.path, "--host", "127.0.0.1", "--port", String(port), "--no-demo"]
            var environment = ProcessInfo.processInfo.environment
            environment["CARDDESK_RATE_LIMIT_PERCENT"] = "0"
            environment["CARDDESK_LOG_LEVEL"] = "error"
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            for _ in 0..<600 {
                if let (_, response) = try? await URLSession.shared.data(from: url.appendingPathComponent("health")),
                   (response as? HTTPURLResponse)?.statusCode == 200 { return }
                try await Task.sleep(for: .milliseconds(100))
                guard process.isRunning else { break }
            }
            process.terminate()
            throw CardDeskError(.internalFailure, "carddesk-server did not start on port \(port)")
        }

        /// Resident and peak resident memory, MB.
        func memory() -> (rss: Double, peak: Double) {
            let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
            func value(_ key: String) -> Double {
                guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
                return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
            }
            return (value("VmRSS"), value("VmHWM"))
        }

        /// The server process's CPU time so far (user + system), seconds.
        func cpuSeconds() -> Double {
            let stat = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)) ?? ""
            // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
            guard let close = stat.lastIndex(of: ")") else { return 0 }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
            return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }

        func stop() {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }
    }

    static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw CardDeskError(.internalFailure, "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
