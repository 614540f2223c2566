public import CardAgent
public import CardDeskAPI
public import CardDeskCore
public import CardDeskServerKit
public import CertificateAuthority
import CardDeskStore
import CardDeskWeb
public import Foundation
import Logging
public import RegistrationAuthority
public import Smartcard
import Synchronization
public import VirtualSmartcard

// What the suites that need a real server share: a data directory with its instance, and the HTTP application on a
// free port. Test code only: no production target depends on this.

/// A clock tests can move.
public final class TestClock: WallClock {
    private let time: Mutex<Timestamp>
    public init(_ start: Timestamp) { time = Mutex(start) }
    public func now() -> Timestamp { time.withLock { $0 } }
    public func advance(seconds: Int64) { time.withLock { $0 = $0.adding(seconds: seconds) } }
}

/// A real data directory (SQLite, PKI), the real engine, and virtual cards issued by the real card issuer.
public struct RenewalFixture: Sendable {
    public let folder: URL
    public let instance: CardDeskInstance
    public let clock: TestClock
    public let user = try! UserID("555254600106")

    /// `flags`: server settings over the fixture's own (for example `rate.limit.percent`).
    public static func make(flags: [String: String] = [:]) async throws -> RenewalFixture {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-ra-\(UUID().uuidString)")
        let clock = TestClock(SystemClock().now())
        // One test client stands for many workstations here: rate limits off (they have their own tests in Tests/Security).
        let settings = try await ServerSettings.resolve(
            flags: ["data": folder.appendingPathComponent("data").path, "rate.limit.percent": "0"].merging(flags) { $1 }, environment: [:]
        )
        let instance = try await CardDeskInstance.open(settings, logger: Logger(label: "test"), clock: clock, serving: true)
        let fixture = RenewalFixture(folder: folder, instance: instance, clock: clock)
        try await instance.store.addUser(
            try User(id: fixture.user, givenName: "Jane", familyName: "Doe", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")]),
            audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:555254600106", time: clock.now())
        )
        return fixture
    }

    public static func with(flags: [String: String] = [:], _ body: (RenewalFixture) async throws -> Void) async throws {
        let fixture = try await make(flags: flags)
        do { try await body(fixture) } catch {
            await fixture.instance.close()
            throw error
        }
        await fixture.instance.close()
    }

    public func issueCard(_ name: String, validityDays: Int? = 30, keyAlgorithm: CardKeyAlgorithm = .p256) async throws -> PIVCardSession {
        let file = folder.appendingPathComponent("\(name).json")
        _ = try await instance.cardIssuer.issueVirtualCard(userID: user, file: file, passcode: "123456", keyAlgorithm: keyAlgorithm, validityDays: validityDays, actor: "test")
        let card = PIVCardSession(transport: VirtualPIVCard(file: file))
        try await card.verifyPIN("123456")
        return card
    }

    /// The audit entries of one action, as "outcome details".
    public func audit(_ action: AuditEvent.Action) async throws -> [String] {
        let found = Mutex<[String]>([])
        try await instance.store.forEachAuditEntry { entry in
            if entry.event.action == action { found.withLock { $0.append("\(entry.event.outcome.rawValue) \(entry.event.details)") } }
        }
        return found.withLock { $0 }
    }

    /// Starts a renewal as the agent does: a fresh challenge signed by the card's authentication key; `withWitness`:
    /// then the card's management-key witness too (its algorithm from the card), as the agent sends it with the start.
    public func start(_ card: PIVCardSession, claiming serial: String? = nil, withWitness: Bool = false) async throws -> RenewalView {
        let challenge = try await instance.renewal.challenge()
        let cardSerial = try await card.serial()
        let signature = try await card.sign(RenewalStartMessage.make(challenge: challenge, cardSerial: serial ?? cardSerial), with: .authentication)
        var witness: [UInt8]?
        if withWitness {
            guard let algorithm = try await card.managementKeyAlgorithm() else { throw CardDeskError(.unsupportedCard, "the card does not say its management key's algorithm") }
            witness = try await card.administrationWitness(algorithm: algorithm)
        }
        return try await instance.renewal.start(
            cardSerial: serial ?? cardSerial, challenge: challenge, signature: signature.rawRepresentation, encryptedWitness: witness
        )
    }
}

/// The real HTTP application, in process, on a free port (for the real `ServerClient` over real HTTP).
public struct LiveServer: Sendable {
    public let url: URL
    let task: Task<Void, any Error>

    public static func start(_ instance: CardDeskInstance) async throws -> LiveServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let app = buildApplication(
            services: instance.webServices,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: logger,
            onServerRunning: { port in continuation.yield(port ?? 0) }
        )
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw CardDeskError(.internalFailure, "the test server did not start") }
        return LiveServer(url: URL(string: "http://127.0.0.1:\(port)")!, task: task)
    }

    public func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    /// Runs `body` with a client of a live server, and stops the server however `body` ends.
    public static func with(_ instance: CardDeskInstance, _ body: (ServerClient) async throws -> Void) async throws {
        let server = try await start(instance)
        do {
            try await body(ServerClient(baseURL: server.url))
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

