import CardAgent
import CardDeskAPI
import CardDeskCore
import CardDeskServerKit
import CardDeskStore
import CardDeskWeb
import CertificateAuthority
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import Logging
import Smartcard
import VirtualSmartcard

/// Renewals through the whole path: virtual cards held in memory (each stands for its own chip; P-256 keys generated on the card), the `carddesk` client over
/// real HTTP to the server's renewal API, two certificates issued and stored durably per card, old ones revoked.
enum RenewalScenario {
    /// - Parameters:
    ///   - peak: in flight for the rows "at peak" (as many renewals again, on cards of their own; `/health` and a
    ///     sign-in row again); 0: none.
    ///   - keyAlgorithm: the cards' key type (their new keys are generated on the card, as in the field).
    ///   - agents: whether to measure sign-ins and the agents' check-ins too (once per run is enough).
    ///   - database: a PostgreSQL database to use (and the master key its audit chain is keyed with); nil: SQLite in
    ///     the scenario's own data directory.
    static func run(
        renewals: Int, concurrency: Int, peak: Int, folder: URL, rawRate: Double, keyAlgorithm: CardKeyAlgorithm = .p256, agents: Bool = true,
        database: (url: String, masterKey: String)? = nil
    ) async throws {
        // On PostgreSQL the server takes the benchmark's own data directory, whose PKI made the certificates already in
        // the database (a server refuses to make a new CA over a database that holds certificates).
        let data = database == nil ? folder.appendingPathComponent("renewal-data") : folder
        // The benchmark is one client standing for many workstations: the rate limits are counted in the store as in
        // production, at 1,000 times their size so that none refuses (CARDDESK_BENCH_RATE_LIMIT_PERCENT=0: not counted).
        var flags = ["data": data.path, "rate.limit.percent": ProcessInfo.processInfo.environment["CARDDESK_BENCH_RATE_LIMIT_PERCENT"] ?? "100000"]
        if let database {
            flags["database.url"] = database.url
            flags["master.key"] = database.masterKey
        }
        let settings = try await ServerSettings.resolve(flags: flags, environment: [:])
        var logger = Logger(label: "carddesk-bench")
        logger.logLevel = ProcessInfo.processInfo.environment["CARDDESK_BENCH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        let instance = try await CardDeskInstance.open(settings, logger: logger, serving: true)
        defer { Task { await instance.close() } }
        let user = try User(id: try UserID("555254600107"), givenName: "Renewal", familyName: "Bench", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")])
        if try await instance.store.user(id: user.id) == nil {
            try await instance.store.addUser(user, audit: AuditEvent(action: .userAdd, actor: "bench", subject: "user:\(user.id)", time: instance.clock.now()))
        }
        let revokedBefore = try await instance.store.revokedCertificates(profile: .authentication).count
            + instance.store.revokedCertificates(profile: .signing).count
        let cardPrefix = folder.appendingPathComponent("card-\(keyAlgorithm.rawValue)-").path
        // A card renews once (its new certificates are years from their renewal window): the peak row has its own.
        let cardCount = peak > 0 ? renewals * 2 : renewals
        for index in 0..<cardCount {
            let file = URL(fileURLWithPath: cardPrefix + "\(index).json")
            _ = try await instance.cardIssuer.issueVirtualCard(userID: user.id, file: file, passcode: "123456", keyAlgorithm: keyAlgorithm, validityDays: 30, actor: "bench")
        }

        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = buildApplication(
            services: instance.webServices,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger,
            onServerRunning: { continuation.yield($0 ?? 0) }
        )
        let serverTask = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CardDeskError(.internalFailure, "the benchmark server did not start") }

        // The cards and the `carddesk` client run in a process of their own (this program, `renewal-client`), as
        // workstations would: this process is then the server alone, and its CPU time over the renewals is the
        // server's cost of a renewal. Both processes share the machine's cores.
        let client = try ClientProcess(arguments: [
            "renewal-client", "--port", "\(port)", "--cards", cardPrefix, "--count", "\(renewals)", "--concurrency", "\(concurrency)",
            "--peak", "\(peak)", "--agents", agents ? "yes" : "no",
        ])
        // The client says "@begin" before each measured row and "@row RATE COUNT CLIENT-CPU-SECONDS MEDIAN P99 IN-FLIGHT
        // NAME" after it (latencies in seconds); this process's CPU time between the two is the server's for that row.
        var serverCPUAtBegin = Benchmark.processCPUSeconds()
        var renewalsReported = 0
        var baseline: Double?
        let marks = ProcessInfo.processInfo.environment["CARDDESK_BENCH_MARKS"] != nil
        for await line in client.lines {
            if marks {
                // CLOCK_MONOTONIC, the clock of `perf record -k CLOCK_MONOTONIC`: each row's window in a profile.
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                print("mark \(now.tv_sec).\(String(format: "%09d", now.tv_nsec)) \(line)")
            }
            if line == "@begin" {
                serverCPUAtBegin = Benchmark.processCPUSeconds()
            } else if line.hasPrefix("@row ") {
                let serverCPU = Benchmark.processCPUSeconds() - serverCPUAtBegin
                let fields = line.split(separator: " ", maxSplits: 7)
                guard fields.count == 8, let rate = Double(fields[1]), let count = Double(fields[2]), let clientCPU = Double(fields[3]),
                      let median = Double(fields[4]), let p99 = Double(fields[5]), let inFlight = Int(fields[6]) else {
                    throw CardDeskError(.internalFailure, "the benchmark's client reported \(line)")
                }
                let name = String(fields[7])
                let cpu = (server: serverCPU / count, client: clientCPU / count)
                if name == "renewal" {
                    renewalsReported += 1
                    printRenewal(keyAlgorithm: keyAlgorithm, concurrency: inFlight, rate: rate, rawRate: rawRate, cpu: cpu, latency: (median, p99))
                } else {
                    // Each `/health` row is the baseline of the rows after it (at its number in flight).
                    if name.hasPrefix("GET /health") || baseline == nil { baseline = rate }
                    print(name.padding(toLength: max(44, name.count + 1), withPad: " ", startingAt: 0) + String(
                        format: "%10.1f /s   ratio to /health %.2f   CPU: server %4.0f µs, client %4.0f µs; the server alone: %.0f /s; latency %@",
                        rate, rate / baseline!, cpu.server * 1e6, cpu.client * 1e6, serverAlone(cpuPerOperation: cpu.server), latencyText(median, p99)
                    ))
                }
            } else {
                print(line)
            }
        }
        try await client.finish()
        guard renewalsReported == (peak > 0 ? 2 : 1) else { throw CardDeskError(.internalFailure, "the renewal client reported \(renewalsReported) renewal rows") }
        serverTask.cancel()
        _ = try? await serverTask.value

        let revoked = try await instance.store.revokedCertificates(profile: .authentication).count
            + instance.store.revokedCertificates(profile: .signing).count - revokedBefore
        guard revoked == cardCount * 2 else {
            throw CardDeskError(.internalFailure, "expected \(cardCount * 2) superseded certificates, found \(revoked)")
        }
        print("  all \(cardCount) renewals complete: \(cardCount * 2) old certificates revoked as superseded")
    }

    /// This machine's cores.
    static var cores: Double { Double(ProcessInfo.processInfo.activeProcessorCount) }

    /// The server's capacity on its own, operations per second: the cores over its CPU seconds per operation (the
    /// client, standing for the workstations, shares the cores in the bench).
    static func serverAlone(cpuPerOperation: Double) -> Double { cores / cpuPerOperation }

    /// "median 12.3 ms, 99th percentile 45.6 ms" (from seconds).
    static func latencyText(_ median: Double, _ p99: Double) -> String {
        String(format: "median %.1f ms, 99th percentile %.1f ms", median * 1000, p99 * 1000)
    }

    static func printRenewal(
        keyAlgorithm: CardKeyAlgorithm, concurrency: Int, rate: Double, rawRate: Double, cpu: (server: Double, client: Double), latency: (Double, Double)
    ) {
        print("renewal, \(keyAlgorithm.rawValue) card keys, \(concurrency) in flight".padding(toLength: 44, withPad: " ", startingAt: 0)
            + String(format: "%10.1f /s", rate) + "   latency " + latencyText(latency.0, latency.1))
        print(String(format: "ratio renewal/raw signing: %.4f (a renewal: 5 HTTP requests, 5 card signatures, 2 CA and 4 OCSP signatures (good for the new certificates, revoked for the old), 5 transactions)", rate / rawRate))
        print(String(
            format: "  CPU per renewal: server %.2f ms, cards and client (another process) %.2f ms; the server alone on %.0f cores: %.0f /s",
            cpu.server * 1000, cpu.client * 1000, cores, serverAlone(cpuPerOperation: cpu.server)
        ))
    }

    /// Runs one measured row in the client process, framed for the server process (see `run`).
    static func row(_ name: String, count: Int, concurrency: Int, _ operation: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        print("@begin")
        fflush(nil)
        // Each operation's time from start to answer (at `concurrency` in flight: queueing included).
        let latencies = SharedMutex([Double](repeating: 0, count: count))
        let before = Benchmark.processCPUSeconds()
        let rate = try await Benchmark.measure(count: count, concurrency: concurrency) { index in
            let start = ContinuousClock.now
            try await operation(index)
            let elapsed = ContinuousClock.now - start
            latencies.withLock { $0[index] = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18 }
        }
        let cpu = Benchmark.processCPUSeconds() - before
        let sorted = latencies.withLock { $0 }.sorted()
        let median = sorted[sorted.count / 2], p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
        print("@row \(rate) \(count) \(cpu) \(median) \(p99) \(concurrency) \(name)")
        fflush(nil)
        return rate
    }

    /// `carddesk-bench renewal-client --port P --cards PREFIX --count N --concurrency C --peak K --agents yes|no`: the
    /// client side of the scenario in a process of its own. Renews the cards PREFIX0.json … (held in memory, each its
    /// own chip) through the server at 127.0.0.1:P, then reports the row (see `run`); with K > 0, as many cards again
    /// at K in flight; with agents, the check-in and sign-in rows follow.
    static func client(_ arguments: ArraySlice<String>) async throws {
        var values: [String: String] = [:]
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            guard flag.hasPrefix("--"), let value = iterator.next() else { throw CardDeskError(.invalidInput, "renewal-client: \(flag) needs a value") }
            values[String(flag.dropFirst(2))] = value
        }
        guard let port = values["port"].flatMap(Int.init), let prefix = values["cards"], let count = values["count"].flatMap(Int.init),
              let concurrency = values["concurrency"].flatMap(Int.init) else {
            throw CardDeskError(.invalidInput, "renewal-client needs --port, --cards, --count and --concurrency")
        }
        let peak = values["peak"].flatMap(Int.init) ?? 0
        let cards = try (0..<(peak > 0 ? count * 2 : count)).map {
            PIVCardSession(transport: try VirtualPIVCard.inMemory(copying: URL(fileURLWithPath: prefix + "\($0).json")))
        }
        let client = ServerClient(baseURL: URL(string: "http://127.0.0.1:\(port)")!, transport: BenchTransport())
        _ = try await row("renewal", count: count, concurrency: concurrency) { index in
            try await RenewalClient(server: client, card: cards[index]).renew(passcode: "123456") { _, _ in }
        }
        if peak > 0 {
            _ = try await row("renewal", count: count, concurrency: peak) { index in
                try await RenewalClient(server: client, card: cards[count + index]).renew(passcode: "123456") { _, _ in }
            }
        }
        if values["agents"] == "yes" { try await checkIns(client: client, port: port, cards: Array(cards.prefix(count)), concurrency: concurrency, peak: peak) }
        fflush(nil)
    }

    /// What every running agent costs the server: a check-in every 5 s (presence, and with its session token a
    /// keep-alive read), against `GET /health` (one database read) in the same run.
    static func checkIns(client: ServerClient, port: Int, cards: [PIVCardSession], concurrency: Int, peak: Int) async throws {
        var tokens: [String] = []
        for card in cards.prefix(50) {
            let serial = try await card.serial()
            // The renewal reset the card at its end (nothing stays open): the holder types the passcode to sign in.
            try await card.verifyPIN("123456")
            let challenge = try await client.loginChallenge()
            let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
            let session = try await client.login(.init(cardSerial: serial, challenge: challenge, signature: Data(signature.rawRepresentation)))
            if let token = session.token { tokens.append(token) }
        }
        let sessionTokens = tokens
        let health = URL(string: "http://127.0.0.1:\(port)/health")!
        let count = 5_000
        let healthCheck: @Sendable (Int) async throws -> Void = { _ in
            guard try await BenchTransport().exchange(method: "GET", url: health, headers: [], body: nil).status == 200 else {
                throw CardDeskError(.internalFailure, "GET /health failed")
            }
        }
        _ = try await row("GET /health (baseline, \(concurrency) in flight)", count: count, concurrency: concurrency, healthCheck)
        // Each check-in's answer carries a sign-in challenge: kept for the sign-ins below, as an agent keeps its last.
        let heldChallenges = SharedMutex([String]())
        _ = try await row("agent check-in, presence only", count: count, concurrency: concurrency) { _ in
            let answer = try await client.checkIn(bridgePort: 43490, token: nil)
            guard let challenge = answer.challenge else { throw CardDeskError(.internalFailure, "a check-in's answer carried no challenge") }
            heldChallenges.withLock { $0.append(challenge) }
        }
        // A sign-in: the card's signature (in this process) over a challenge, the session opened and audited. An agent
        // signs the challenge its last check-in brought (one request); without a fresh one it asks first (two).
        let signingCards = Array(cards.prefix(50))
        let signIns = 2_000
        let held = heldChallenges.withLock { $0 }
        guard held.count >= (peak > 0 ? 2 : 1) * signIns else { throw CardDeskError(.internalFailure, "too few check-in challenges for the sign-ins") }
        let signIn: @Sendable ([String]) -> @Sendable (Int) async throws -> Void = { challenges in { index in
                let card = signingCards[index % signingCards.count]
                let serial = try await card.serial()
                let challenge = try await challenges.isEmpty ? client.loginChallenge() : challenges[index]
                let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
                guard try await client.login(.init(cardSerial: serial, challenge: challenge, signature: Data(signature.rawRepresentation))).token != nil else {
                    throw CardDeskError(.internalFailure, "a benchmark sign-in opened no session")
                }
        } }
        _ = try await row("sign-in (check-in's challenge)", count: signIns, concurrency: concurrency, signIn(Array(held.prefix(signIns))))
        _ = try await row("sign-in (asking for its challenge)", count: signIns, concurrency: concurrency, signIn([]))
        let keepAlive = try await row("agent check-in with session keep-alive", count: count, concurrency: concurrency) { index in
            let answer = try await client.checkIn(bridgePort: 43490, token: sessionTokens[index % sessionTokens.count])
            guard answer.session?.active == true else { throw CardDeskError(.internalFailure, "a benchmark session ended") }
        }
        print(String(format: "  at one check-in per agent every 5 s: %.0f running agents per server at the keep-alive rate (a lower bound: the client shares the cores)", keepAlive * 5))
        guard peak > 0 else { return }
        // The same at the peak's number in flight (the check-in's challenges not used above).
        _ = try await row("GET /health (baseline, \(peak) in flight)", count: count, concurrency: peak, healthCheck)
        _ = try await row("sign-in (check-in's challenge), \(peak) in flight", count: signIns, concurrency: peak, signIn(Array(held.suffix(signIns))))
    }
}

/// The benchmark's client process (this program in another mode), its output read line by line as it comes.
final class ClientProcess: Sendable {
    let lines: AsyncStream<String>
    let exit: AsyncStream<Int32>

    init(arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        let (lines, continuation) = AsyncStream<String>.makeStream()
        let (exit, ended) = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { ended.yield($0.terminationStatus); ended.finish() }
        try process.run()
        self.lines = lines
        self.exit = exit
        // Read on a thread of its own: the reads block, which the cooperative pool must never do.
        let handle = output.fileHandleForReading
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    continuation.yield(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            if !pending.isEmpty { continuation.yield(String(decoding: pending, as: UTF8.self)) }
            continuation.finish()
        }
    }

    /// Waits for the process to end (its output has ended) and fails unless it succeeded.
    func finish() async throws {
        var statuses = exit.makeAsyncIterator()
        let status = await statuses.next()
        guard status == 0 else {
            throw CardDeskError(.internalFailure, "the benchmark's client process failed (exit status \(status.map(String.init) ?? "unknown"))")
        }
    }
}
