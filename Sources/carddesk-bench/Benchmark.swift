import CardDeskCore
import CardDeskServerKit
import CardDeskStore
import CertificateAuthority
import Crypto
import _CryptoExtras
import Foundation
import Logging
import SwiftASN1
import X509

/// `carddesk-bench`: issuance throughput through the real code path (CSR parse and proof-of-possession check,
/// signing, durable commit with its audit entry) against the raw signing rate of the same CA key, measured in the
/// same run. Absolute times on a shared machine are noisy; the ratio is the figure to compare.
///
///     swift run -c release carddesk-bench [--issuances N] [--signatures N] [--concurrency N] [--database-url URL]
///         [--renewals N] [--peak N|0] [--rsa-renewals N|0] [--hsm-module PATH|none --hsm-token LABEL --hsm-pin-file FILE]
///     swift run -c release carddesk-bench scale [...]   (the scale curve: see ScaleScenario)
///
/// With an HSM (default: SoftHSMv2 when installed, in a token directory of its own), the same figures are measured
/// for a CA whose key is in the token, next to the software key's, in the same run.
@main
struct Benchmark {
    struct Options {
        var issuances = 1000
        var signatures = 10000
        var concurrency = 8
        var databaseURL: String?
        var renewals = 100
        /// In flight for the rows "at peak" (renewals, `/health` and sign-ins again): a morning when a country's
        /// certificates fall due has thousands of workstations at it at once. 0: no peak rows.
        var peak = 128
        /// Renewals with RSA-2048 card keys (nil: a fifth of `renewals`, at least 10; 0: none, for profiling the rest).
        var rsaRenewals: Int?
        /// The PKCS#11 module for the HSM rows: SoftHSMv2 (set up here) when installed; nil: none.
        var hsmModule: String? = FileManager.default.fileExists(atPath: SoftHSMBench.module) ? SoftHSMBench.module : nil
        var hsmToken: String?
        var hsmPinFile: String?

        init(_ arguments: [String]) throws {
            var iterator = arguments.dropFirst().makeIterator()
            while let flag = iterator.next() {
                guard let value = iterator.next() else { throw CardDeskError(.invalidInput, "\(flag) needs a value") }
                switch flag {
                case "--issuances": issuances = try Self.count(flag, value)
                case "--signatures": signatures = try Self.count(flag, value)
                case "--concurrency": concurrency = try Self.count(flag, value)
                case "--database-url": databaseURL = value
                case "--renewals": renewals = try Self.count(flag, value)
                case "--peak": peak = value == "0" ? 0 : try Self.count(flag, value)
                case "--rsa-renewals": rsaRenewals = value == "0" ? 0 : try Self.count(flag, value)
                case "--hsm-module": hsmModule = value == "none" ? nil : value
                case "--hsm-token": hsmToken = value
                case "--hsm-pin-file": hsmPinFile = value
                default: throw CardDeskError(.invalidInput, "unknown option \(flag); use --issuances, --signatures, --concurrency, --renewals, --peak, --rsa-renewals, --database-url, --hsm-module, --hsm-token, --hsm-pin-file")
                }
            }
        }

        static func count(_ flag: String, _ value: String) throws -> Int {
            guard let number = Int(value), number > 0 else { throw CardDeskError(.invalidInput, "\(flag) takes a positive whole number") }
            return number
        }
    }

    static func main() async {
        // The server's own log handler (what `carddesk-server serve` sets up), quiet below errors
        // (`CARDDESK_BENCH_LOG_LEVEL=trace`: every SQL statement with its values, to count what an operation runs).
        _ = LoggingSetup.bootstrap(format: "text", level: ProcessInfo.processInfo.environment["CARDDESK_BENCH_LOG_LEVEL"] ?? "error")
        do {
            if CommandLine.arguments.dropFirst().first == "renewal-client" {
                try await RenewalScenario.client(CommandLine.arguments.dropFirst(2))
            } else if CommandLine.arguments.dropFirst().first == "scale" {
                try await ScaleScenario.run(try ScaleScenario.Options(CommandLine.arguments.dropFirst(2)))
            } else {
                try await run(try Options(CommandLine.arguments))
            }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ options: Options) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let logger = Logger(label: "carddesk-bench")
        let location = try options.databaseURL.map(DatabaseLocation.init(url:)) ?? .sqlite(path: folder.appendingPathComponent("bench.sqlite").path)
        let clock = SystemClock()
        let masterKeyBase64 = MasterKey.generateBase64()
        let masterKey = try MasterKey(base64: masterKeyBase64)
        let store = try await SQLStore.open(location, logger: logger, now: clock.now(), auditKey: masterKey.derivedKey(label: "audit-chain"))
        defer { Task { try? await store.close() } }
        let (hierarchy, _) = try CAHierarchy.loadOrCreate(
            directory: folder.appendingPathComponent("pki"), masterKey: masterKey,
            organisation: "Bench", now: clock.now()
        )
        let authority = CertificateAuthority(
            hierarchy: hierarchy,
            profiles: Dictionary(uniqueKeysWithValues: CertificateProfileKind.allCases.map { ($0, CertificateProfile(kind: $0)) }),
            urls: PKIURLs(base: "http://127.0.0.1:8080"), storage: store, clock: clock
        )
        let user = try User(id: try UserID("555254600106"), givenName: "Bench", familyName: "Mark", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")])
        if try await store.user(id: user.id) == nil {
            try await store.addUser(user, audit: AuditEvent(action: .userAdd, actor: "bench", subject: "user:\(user.id)", time: clock.now()))
        }

        // CSRs are made before timing starts: a card makes its key and CSR, the CA only checks it.
        let csrs: [[UInt8]] = try requests(min(options.issuances, 64))
        let issuer = hierarchy.issuer(.authentication)
        // About the size of a card certificate's to-be-signed part.
        let tbs = [UInt8](repeating: 0x5A, count: 620)

        print("carddesk-bench: \(location.description.hasPrefix("sqlite") ? "SQLite (WAL, synchronous=FULL)" : "PostgreSQL"), CA key \(issuer.certificate.publicKey)")
        print("  \(options.signatures) raw signatures, \(options.issuances) issuances sequential and \(options.issuances) with \(options.concurrency) in flight")

        var cpu = processCPUSeconds()
        let raw = try await measure(count: options.signatures, concurrency: 1) { _ in _ = try await issuer.signature(over: tbs) }
        let rawCPU = (processCPUSeconds() - cpu) / Double(options.signatures)
        cpu = processCPUSeconds()
        let sequential = try await measure(count: options.issuances, concurrency: 1) { index in
            try await issueOne(authority, user: user, csr: csrs[index % csrs.count], index: index)
        }
        let sequentialCPU = (processCPUSeconds() - cpu) / Double(options.issuances)
        cpu = processCPUSeconds()
        let commitsBefore = store.commitStatistics
        let concurrent = try await measure(count: options.issuances, concurrency: options.concurrency) { index in
            try await issueOne(authority, user: user, csr: csrs[index % csrs.count], index: index)
        }
        let concurrentCPU = (processCPUSeconds() - cpu) / Double(options.issuances)
        let commitsAfter = store.commitStatistics
        let perCommit = Double(commitsAfter.transactions - commitsBefore.transactions) / Double(max(1, commitsAfter.commits - commitsBefore.commits))
        let rawAfter = try await measure(count: options.signatures, concurrency: 1) { _ in _ = try await issuer.signature(over: tbs) }
        let rawRate = (raw + rawAfter) / 2
        // The other piece of crypto in every issuance: the request's proof of possession (a P-256 verification).
        let parsed = try csrs.map { try CertificateRequestCheck.parse($0) }
        let checks = try await measure(count: options.signatures, concurrency: 1) { index in
            try CertificateRequestCheck.checkProofOfPossession(parsed[index % parsed.count])
        }
        // One check and one signature, nothing else: the most an issuance could reach on one core.
        let ceiling = 1 / (1 / rawRate + 1 / checks)

        func line(_ name: String, _ rate: Double) -> String {
            name.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: "%10.1f /s", rate)
        }
        print(line("raw CA signing (same key, before)", raw) + String(format: "   CPU per signature %4.0f µs", rawCPU * 1e6))
        print(line("raw CA signing (same key, after)", rawAfter))
        print(line("issuance, sequential", sequential) + String(format: "   CPU per issuance %4.0f µs", sequentialCPU * 1e6))
        print(line("issuance, \(options.concurrency) in flight", concurrent) + String(format: "   CPU per issuance %4.0f µs, %.1f per commit", concurrentCPU * 1e6, perCommit))
        print(line("raw proof-of-possession checks", checks))
        print(String(format: "ratio issuance/raw signing: sequential %.3f, concurrent %.3f", sequential / rawRate, concurrent / rawRate))
        print(String(format: "ratio issuance/its own crypto (one check and one signature, %.0f /s): sequential %.3f, concurrent %.3f",
                     ceiling, sequential / ceiling, concurrent / ceiling))
        let stored = try await store.certificateCount()
        guard stored >= options.issuances * 2 else {
            throw CardDeskError(.internalFailure, "only \(stored) of \(options.issuances * 2) issued certificates are stored")
        }
        guard case .intact = try await store.verifyAuditChain() else {
            throw CardDeskError(.auditChainBroken, "the audit chain does not verify after the benchmark")
        }
        print("  all \(stored) certificates stored; audit chain verified")
        if let module = options.hsmModule {
            try await hsmRows(options, module: module, folder: folder, store: store, user: user, csrs: csrs, tbs: tbs, software: (issuer, concurrent), line: line)
        } else {
            print("HSM: skipped (no PKCS#11 module: install softhsm2, or give --hsm-module PATH --hsm-token LABEL --hsm-pin-file FILE)")
        }
        // On PostgreSQL the renewal server shares this database (and so the master key its audit chain is keyed with).
        let shared: (url: String, masterKey: String)? = options.databaseURL.flatMap { url in
            if case .postgres = location { (url, masterKeyBase64) } else { nil }
        }
        try await RenewalScenario.run(
            renewals: options.renewals, concurrency: options.concurrency, peak: options.peak, folder: folder, rawRate: rawRate, database: shared
        )
        // RSA-2048 card keys: the card's key generation dominates (as on real cards); a fifth as many.
        let rsaRenewals = options.rsaRenewals ?? max(10, options.renewals / 5)
        guard rsaRenewals > 0 else { return }
        try await RenewalScenario.run(
            renewals: rsaRenewals, concurrency: options.concurrency, peak: 0, folder: folder, rawRate: rawRate, keyAlgorithm: .rsa2048,
            agents: false, database: shared
        )
    }

    /// The same issuance through a CA whose key is in the HSM, next to the software key's figures.
    static func hsmRows(
        _ options: Options, module: String, folder: URL, store: SQLStore, user: User, csrs: [[UInt8]], tbs: [UInt8],
        software: (issuer: IssuingCA, concurrent: Double), line: (String, Double) -> String
    ) async throws {
        let token: String, pin: String
        if module == SoftHSMBench.module, options.hsmToken == nil {
            (token, pin) = try SoftHSMBench.prepare(in: folder)
        } else {
            guard let label = options.hsmToken, let pinFile = options.hsmPinFile, let text = FileManager.default.contents(atPath: pinFile) else {
                throw CardDeskError(.invalidInput, "--hsm-module needs --hsm-token LABEL and --hsm-pin-file FILE")
            }
            (token, pin) = (label, String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let clock = SystemClock()
        let keys = try PKCS11KeyStore(module: module, tokenLabel: token, pin: pin)
        let (hierarchy, _) = try CAHierarchy.loadOrCreate(directory: folder.appendingPathComponent("pki-hsm"), keys: keys, organisation: "Bench HSM", now: clock.now())
        let authority = CertificateAuthority(
            hierarchy: hierarchy,
            profiles: Dictionary(uniqueKeysWithValues: CertificateProfileKind.allCases.map { ($0, CertificateProfile(kind: $0)) }),
            urls: PKIURLs(base: "http://127.0.0.1:8080"), storage: store, clock: clock
        )
        let issuer = hierarchy.issuer(.authentication)
        // Raw signing with as many in flight as issuance has, for both keys (the token signs on several sessions).
        let softwareIssuer = software.issuer
        let softwareRaw = try await measure(count: options.signatures, concurrency: options.concurrency) { _ in _ = try await softwareIssuer.signature(over: tbs) }
        let raw = try await measure(count: options.signatures, concurrency: options.concurrency) { _ in _ = try await issuer.signature(over: tbs) }
        let concurrent = try await measure(count: options.issuances, concurrency: options.concurrency) { index in
            try await issueOne(authority, user: user, csr: csrs[index % csrs.count], index: index)
        }
        print("HSM: \(keys.description), P-256 CA key")
        print(line("raw CA signing, software key, \(options.concurrency) in flight", softwareRaw))
        print(line("raw CA signing in the HSM, \(options.concurrency) in flight", raw))
        print(line("issuance with the HSM key, \(options.concurrency) in flight", concurrent))
        print(String(format: "ratio HSM/software key: raw signing %.3f, issuance %.3f; HSM issuance/HSM raw signing %.3f",
                     raw / softwareRaw, concurrent / software.concurrent, concurrent / raw))
    }

    /// Certificate requests for P-256 keys, as cards make them (made before timing starts: the CA only checks them).
    static func requests(_ count: Int) throws -> [[UInt8]] {
        try (0..<count).map { _ in
            try derBytes(try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName("bench") },
                privateKey: Certificate.PrivateKey(P256.Signing.PrivateKey()), attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256
            ))
        }
    }

    static func issueOne(_ authority: CertificateAuthority, user: User, csr der: [UInt8], index: Int) async throws {
        let csr = try CertificateRequestCheck.parse(der)
        let profile: CertificateProfileKind = index % 2 == 0 ? .authentication : .signing
        _ = try await authority.issue(try await authority.prepare(userID: user.id, profile: profile, csr: csr), actor: "bench")
    }

    /// Operations per second, running `count` operations with at most `concurrency` in flight.
    /// This process's CPU time so far (user + system, all threads), seconds.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func measure(count: Int, concurrency: Int, _ operation: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            while next < min(concurrency, count) {
                let index = next
                group.addTask { try await operation(index) }
                next += 1
            }
            while try await group.next() != nil {
                if next < count {
                    let index = next
                    group.addTask { try await operation(index) }
                    next += 1
                }
            }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(count) / seconds
    }
}

/// SoftHSMv2 for the benchmark: a token directory of its own and one token, made before the module is loaded.
enum SoftHSMBench {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"

    static func prepare(in folder: URL) throws -> (token: String, pin: String) {
        let directory = folder.appendingPathComponent("softhsm")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("tokens"), withIntermediateDirectories: true)
        let configuration = directory.appendingPathComponent("softhsm2.conf")
        try "directories.tokendir = \(directory.path)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n".write(to: configuration, atomically: true, encoding: .utf8)
        setenv("SOFTHSM2_CONF", configuration.path, 1)
        let (token, pin) = ("carddesk-bench", "bench-\(UInt32.random(in: 100_000...999_999))")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["softhsm2-util", "--init-token", "--free", "--label", token, "--pin", pin, "--so-pin", "so-\(pin)"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CardDeskError(.configuration, "softhsm2-util could not make the benchmark's token") }
        return (token, pin)
    }
}
