import Foundation
import Testing

/// Runs real programs: the built carddesk-server, openssl, python3 (cryptography, pkilint), sqlite3, psql.
enum Tools {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var ok: Bool { status == 0 }
    }

    /// The carddesk-server built beside this test bundle (or `CARDDESK_SERVER_BIN`).
    static var serverBinary: String {
        if let path = ProcessInfo.processInfo.environment["CARDDESK_SERVER_BIN"] { return path }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("carddesk-server")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside.path }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return package.appendingPathComponent(".build/debug/carddesk-server").path
    }

    /// The package's folder (for its scripts and test helpers).
    static var package: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The `carddesk` client built beside carddesk-server.
    static var clientBinary: String {
        URL(fileURLWithPath: serverBinary).deletingLastPathComponent().appendingPathComponent("carddesk").path
    }

    @discardableResult
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil, input: String? = nil,
        started: (Int32) -> Void = { _ in }
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = directory }
        // Output goes to files, not pipes: a chatty program can never block on a full pipe.
        let outFile = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-out-\(UUID().uuidString)")
        let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outFile.path, contents: nil)
        FileManager.default.createFile(atPath: errFile.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outFile)
            try? FileManager.default.removeItem(at: errFile)
        }
        process.standardOutput = try FileHandle(forWritingTo: outFile)
        process.standardError = try FileHandle(forWritingTo: errFile)
        if let input {
            let inputFile = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-in-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: inputFile.path, contents: Data(input.utf8))
            process.standardInput = try FileHandle(forReadingFrom: inputFile)
            // The program holds it open; the name can go at once.
            try? FileManager.default.removeItem(at: inputFile)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        started(process.processIdentifier)
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: outFile, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
        )
    }

    /// Runs test code that blocks (waits for programs, polls files) on a thread of its own: the cooperative threads
    /// are one per core, and the tests running in parallel with in-process servers need them; a long loop of
    /// programs waited for on them froze every such server for minutes.
    static func offCooperativePool<R>(_ body: () throws -> R) async throws -> R {
        let thread = BlockingTestThread()
        defer { thread.stop() }
        return try await withTaskExecutorPreference(thread) { try body() }
    }

    static func server(_ arguments: [String], data: URL, environment: [String: String] = [:], input: String? = nil) throws -> Result {
        try run(serverBinary, arguments + ["--data", data.path], environment: environment, input: input)
    }

    static func temporaryFolder(_ name: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-e2e-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// A CSR made by OpenSSL: `rsa:2048`, `rsa:1024`, `ec:P-256`, `ec:P-384`.
    static func opensslCSR(_ keySpec: String, in folder: URL, name: String) throws -> URL {
        let csr = folder.appendingPathComponent("\(name).csr")
        var arguments = ["req", "-new", "-nodes", "-keyout", folder.appendingPathComponent("\(name).key").path, "-subj", "/CN=Chosen By Client/O=Evil", "-out", csr.path]
        if keySpec.hasPrefix("ec:") {
            arguments += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:\(keySpec.dropFirst(3))"]
        } else {
            arguments += ["-newkey", keySpec]
        }
        let result = try run("openssl", arguments)
        guard result.ok else { throw ToolError("openssl req failed: \(result.stderr)") }
        return csr
    }

    /// A certificate file's serial in hex, as openssl prints it (and the store keeps it).
    static func serial(ofCertificate file: URL) throws -> String {
        try run("openssl", ["x509", "-in", file.path, "-noout", "-serial"]).stdout
            .replacingOccurrences(of: "serial=", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A fresh, empty database on the suite's PostgreSQL server (`CARDDESK_TEST_POSTGRES_URL`): its URL.
    static func freshPostgresDatabase(_ prefix: String) throws -> String {
        guard let base = ProcessInfo.processInfo.environment["CARDDESK_TEST_POSTGRES_URL"], var components = URLComponents(string: base) else {
            throw ToolError("CARDDESK_TEST_POSTGRES_URL names no PostgreSQL server")
        }
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        let created = try run("psql", [base, "-q", "-c", "CREATE DATABASE \(name)"])
        guard created.ok else { throw ToolError("CREATE DATABASE \(name): \(created.stderr)") }
        components.path = "/" + name
        guard let url = components.string else { throw ToolError("cannot name database \(name) in \(base)") }
        return url
    }

    static func sqlite(_ database: URL, _ sql: String) throws -> String {
        let result = try run("sqlite3", [database.path, sql])
        guard result.ok, !result.stderr.contains("Error") else { throw ToolError("sqlite3 failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct ToolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A `carddesk-server serve` process on a free port.
final class ServerProcess {
    let process = Process()
    let port: Int
    let output: URL

    /// `faultyAt` (`save:after:3`): the test server that kills itself at that renewal commit (carddesk-server-faults).
    init(data: URL, extraArguments: [String] = [], environment: [String: String] = [:], faultyAt: String? = nil) throws {
        output = data.deletingLastPathComponent().appendingPathComponent("server-\(UUID().uuidString.prefix(6)).log")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        if let faultyAt {
            process.executableURL = URL(fileURLWithPath: Tools.serverBinary).deletingLastPathComponent().appendingPathComponent("carddesk-server-faults")
            process.arguments = ["--data", data.path, "--kill-at", faultyAt]
        } else {
            process.executableURL = URL(fileURLWithPath: Tools.serverBinary)
            process.arguments = ["serve", "--port", "0", "--data", data.path] + extraArguments
        }
        // These tests renew the same card dozens of times a minute from one address (crash loops): rate limits off
        // here; Tests/Security covers them.
        process.environment = ProcessInfo.processInfo.environment.merging(["CARDDESK_RATE_LIMIT_PERCENT": "0"]) { $1 }.merging(environment) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Wait for "CardDesk server listening on http://127.0.0.1:PORT".
        let deadline = Date().addingTimeInterval(30)
        var found: Int?
        while Date() < deadline, found == nil, process.isRunning {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                found = Int(text[range.upperBound...].prefix { $0.isNumber })
            } else {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        guard let found else {
            process.terminate()
            throw ToolError("the server did not start: \((try? String(contentsOf: output, encoding: .utf8)) ?? "")")
        }
        port = found
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for exit, returning the status, or nil if it did not exit in time.
    func waitForExit(seconds: Double = 15) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A thread that runs one test's jobs (a task executor), so that the test may block on it.
final class BlockingTestThread: TaskExecutor, @unchecked Sendable {
    // Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    private var stopping = false
    private let condition = NSCondition()

    init() {
        let thread = Thread { self.loop() }
        thread.name = "carddesk-test-blocking"
        thread.stackSize = 8 << 20
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once the jobs already given to it have run.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            let ready = jobs
            jobs.removeAll()
            let done = stopping && ready.isEmpty
            condition.unlock()
            if done { return }
            for job in ready { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
