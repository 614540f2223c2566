import CardDeskAPI
import CardDeskCore
import CardDeskServerKit
import CardDeskStore
import CertificateAuthority
import Foundation
import Logging
import Synchronization
import Testing
import Smartcard
import VirtualSmartcard

/// A clock the tests move by hand.
final class ManualClock: WallClock {
    private let time: Mutex<Timestamp>
    init(_ start: Timestamp) { time = Mutex(start) }
    func now() -> Timestamp { time.withLock { $0 } }
    func advance(seconds: Int64) { time.withLock { $0 = $0.adding(seconds: seconds) } }
}

/// Where an attack runs: the embedded SQLite, and the PostgreSQL server scripts/test starts.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// SQLite always; PostgreSQL when scripts/test named a server (and then it must work: no silent skip).
    static var available: [Backend] {
        ProcessInfo.processInfo.environment["CARDDESK_TEST_POSTGRES_URL"] == nil ? [.sqlite] : [.sqlite, .postgres]
    }

    /// The `database.url` flag for a fresh database of this kind (nil: SQLite in the data directory).
    func freshDatabaseURL() throws -> String? {
        guard self == .postgres, let url = ProcessInfo.processInfo.environment["CARDDESK_TEST_POSTGRES_URL"] else { return nil }
        let name = "carddesk_security_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE \(name)"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CardDeskError(.storageUnavailable, "psql could not create \(name)") }
        var components = try #require(URLComponents(string: url))
        components.path = "/" + name
        return try #require(components.string)
    }
}

/// A real data directory (PKI, store on the chosen backend), one card holder, and virtual cards from the real issuer.
struct SecurityFixture {
    let folder: URL
    let instance: CardDeskInstance
    let clock: ManualClock
    let masterKey: MasterKey
    let user = try! UserID("555254600106")

    static func with(_ backend: Backend = .sqlite, flags: [String: String] = [:], _ body: (SecurityFixture) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-security-\(UUID().uuidString)")
        let clock = ManualClock(SystemClock().now())
        var all = flags
        all["data"] = folder.appendingPathComponent("data").path
        // A known master key, so a test can open what the server sealed (the code in an outbox message).
        let masterKeyText = MasterKey.generateBase64()
        all["master.key"] = masterKeyText
        if let url = try backend.freshDatabaseURL() { all["database.url"] = url }
        let settings = try await ServerSettings.resolve(flags: all, environment: [:])
        let instance = try await CardDeskInstance.open(settings, logger: Logger(label: "security"), clock: clock, serving: true)
        let fixture = SecurityFixture(folder: folder, instance: instance, clock: clock, masterKey: try MasterKey(base64: masterKeyText))
        do {
            try await instance.store.addUser(
                try User(id: fixture.user, givenName: "Jane", familyName: "Doe", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")]),
                audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:\(fixture.user)", time: clock.now())
            )
            try await body(fixture)
        } catch {
            await instance.close()
            throw error
        }
        await instance.close()
    }

    func issueCard(_ name: String, validityDays: Int = 30) async throws -> PIVCardSession {
        let file = folder.appendingPathComponent("\(name).json")
        _ = try await instance.cardIssuer.issueVirtualCard(
            userID: user, file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: validityDays, actor: "test"
        )
        let card = PIVCardSession(transport: VirtualPIVCard(file: file))
        try await card.verifyPIN("123456")
        return card
    }

    func signIn(_ card: PIVCardSession) async throws -> SessionView {
        let challenge = try await instance.login.challenge()
        let serial = try await card.serial()
        let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
        return try await instance.login.login(cardSerial: serial, challenge: challenge, signature: signature.rawRepresentation)
    }

    func startRenewal(_ card: PIVCardSession) async throws -> RenewalView {
        let challenge = try await instance.renewal.challenge()
        let serial = try await card.serial()
        let signature = try await card.sign(RenewalStartMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
        return try await instance.renewal.start(cardSerial: serial, challenge: challenge, signature: signature.rawRepresentation)
    }

    /// The audit entries of one action, as "outcome details".
    func audit(_ action: AuditEvent.Action) async throws -> [String] {
        let found = Mutex<[String]>([])
        try await instance.store.forEachAuditEntry { entry in
            if entry.event.action == action { found.withLock { $0.append("\(entry.event.outcome.rawValue) \(entry.event.details)") } }
        }
        return found.withLock { $0 }
    }
}
