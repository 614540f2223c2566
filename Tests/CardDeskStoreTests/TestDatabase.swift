import CardDeskCore
import CardDeskStore
import Crypto
import Foundation
import Logging
import Testing

/// The databases the storage suite runs on: SQLite always, PostgreSQL when `CARDDESK_TEST_POSTGRES_URL` names a
/// server (scripts/test starts one). Each test gets a database of its own.
enum TestBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static var postgresURL: String? { ProcessInfo.processInfo.environment["CARDDESK_TEST_POSTGRES_URL"] }

    /// SQLite, plus PostgreSQL when a server is configured.
    static var available: [TestBackend] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    /// A fresh, empty database of this kind.
    func freshLocation() throws -> DatabaseLocation {
        switch self {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-store-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            return .sqlite(path: folder.appendingPathComponent("test.sqlite").path)
        case .postgres:
            guard let url = Self.postgresURL else { throw CardDeskError(.configuration, "CARDDESK_TEST_POSTGRES_URL is not set") }
            let name = "carddesk_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
            try Self.psql(url, "CREATE DATABASE \(name)")
            return .postgres(url: Self.replacingDatabase(in: url, with: name))
        }
    }

    func openStore(now: Timestamp = Timestamp(secondsSince1970: 1_795_000_000)) async throws -> SQLStore {
        try await SQLStore.open(try freshLocation(), logger: Logger(label: "test"), now: now, auditKey: Fixtures.auditKey)
    }

    /// Opens a fresh store, runs `body`, and closes the store whether or not `body` throws.
    func withStore(_ body: (SQLStore) async throws -> Void) async throws {
        let store = try await openStore()
        do {
            try await body(store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    static func replacingDatabase(in url: String, with name: String) -> String {
        var components = URLComponents(string: url)!
        components.path = "/" + name
        return components.string!
    }

    /// Runs SQL through the real `psql` client (used to create databases and to tamper with rows by hand).
    static func psql(_ url: String, _ sql: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw CardDeskError(.storageUnavailable, "psql failed: \(text)")
        }
    }
}

enum Fixtures {
    static let now = Timestamp(secondsSince1970: 1_795_000_000)
    /// The audit chain's key in these tests (a server derives it from its master key).
    static let auditKey = SymmetricKey(data: Array(repeating: UInt8(7), count: 32))

    static func user(_ id: String = "555254600106", given: String = "Jane", family: String = "Doe") throws -> User {
        try User(
            id: try UserID(id), givenName: given, familyName: family, organisation: "RBQ",
            roles: [try Role(parsing: "S0080:G0450:R5080@RBQ"), try Role(parsing: "S0080:G0450:R8000@RBQ")]
        )
    }

    static func event(_ action: AuditEvent.Action = .login, subject: String = "user:555254600106", details: String = "") -> AuditEvent {
        AuditEvent(action: action, actor: "test", subject: subject, details: details, time: now)
    }

    static func certificate(serial: String, user: UserID, profile: CertificateProfileKind = .authentication) throws -> CertificateRecord {
        CertificateRecord(
            serial: try SerialNumber(hex: serial), profile: profile, userID: user, subject: "CN=\(user)",
            notBefore: now, notAfter: now.adding(seconds: 86_400 * 1095), der: [0x30, 0x03, 0x02, 0x01, 0x01]
        )
    }
}
