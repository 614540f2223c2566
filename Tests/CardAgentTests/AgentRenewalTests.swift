@testable import CardAgent
import CardDeskAPI
import CardDeskTestSupport
import CardDeskCore
import Foundation
import Smartcard
import Testing
import VirtualSmartcard

/// The workstation agent's renewal from the page, against the real server and a card in a reader folder.
@Suite("Agent: renewal from the page")
struct AgentRenewalTests {
    /// An agent watching a reader folder with an issued card in it, signed in.
    static func signedInAgent(_ fixture: RenewalFixture, _ server: ServerClient, name: String) async throws -> (WorkstationAgent, FolderReader) {
        let file = fixture.folder.appendingPathComponent("\(name).json")
        _ = try await fixture.instance.cardIssuer.issueVirtualCard(userID: fixture.user, file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: 30, actor: "test")
        let folder = fixture.folder.appendingPathComponent("reader-\(name)")
        try SecretFile.createDirectory(folder.path)
        let reader = FolderReader(folder: folder, pollInterval: .milliseconds(20))
        _ = try reader.insert(file)
        let agent = WorkstationAgent(reader: reader, server: server, bridgePort: 0, output: { _ in }, opener: { _ in false })
        let session = try await reader.currentCard()
        await agent.inserted(serial: try await session.serial(), card: session)
        try await agent.signIn(passcode: "123456", fromTerminal: false)
        return (agent, reader)
    }

    @Test("Two requests at once start one renewal, not two")
    func oneRenewalAtATime() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let (agent, _) = try await Self.signedInAgent(fixture, server, name: "twice")
                let outcomes = await withTaskGroup(of: Result<Void, any Error>.self) { group in
                    for _ in 0..<2 { group.addTask { await Result(awaiting: { try await agent.startRenewal(passcode: "123456") }) } }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                let conflicts = outcomes.filter { if case .failure(let error) = $0 { (error as? CardDeskError)?.code == .renewalConflict } else { false } }
                #expect(outcomes.filter { if case .success = $0 { true } else { false } }.count == 1, "exactly one starts")
                #expect(conflicts.count == 1, "the other is told a renewal is running")
                try await Self.waitUntilFinished(agent)
                #expect(await agent.renewalProgress.state == .succeeded)
            }
        }
    }

    @Test("Taking the card out stops the renewal at its next step, even when the card is straight back; run again it completes")
    func removalStopsRenewal() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let file = fixture.folder.appendingPathComponent("gated.json")
                _ = try await fixture.instance.cardIssuer.issueVirtualCard(userID: fixture.user, file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: 30, actor: "test")
                // The card holds the renewal at its first key generation until the test lets it go on.
                let gate = Gate()
                let session = PIVCardSession(transport: GatedTransport(VirtualPIVCard(file: file), holdAt: PIV.Instruction.generateKeyPair, gate: gate))
                let reader = FolderReader(folder: fixture.folder)
                let agent = WorkstationAgent(reader: reader, server: server, bridgePort: 0, output: { _ in }, opener: { _ in false })
                await agent.inserted(serial: try await session.serial(), card: session)
                try await agent.signIn(passcode: "123456", fromTerminal: false)
                try await agent.startRenewal(passcode: "123456")
                await gate.reached()
                // Out and straight back in (the same file, the same session): the renewal for the card that left stops.
                await agent.removed()
                await gate.open()
                try await Self.waitUntilFinished(agent)
                let snapshot = await agent.renewalProgress
                #expect(snapshot.state == .failed)
                #expect(snapshot.errorCode == CardDeskError.Code.cardRemoved.name)
                // Run again: the renewal finishes.
                let again = PIVCardSession(transport: VirtualPIVCard(file: file))
                try await RenewalClient(server: server, card: again).renew(passcode: "123456") { _, _ in }
                #expect(try await fixture.instance.store.certificates(cardSerial: try await again.serial()).filter { $0.status == .good }.count == 2)
            }
        }
    }

    static func waitUntilFinished(_ agent: WorkstationAgent) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while await agent.renewalProgress.state == .running, clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await agent.renewalProgress.state != .running, "the renewal ends")
    }
}

extension Result where Failure == any Error {
    init(awaiting body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// Lets a test hold a card operation until it says so.
actor Gate {
    private var isOpen = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var arrived = false
    private var arrivalWaiters: [CheckedContinuation<Void, Never>] = []

    /// Called by the held operation: waits until `open()`.
    func pass() async {
        arrived = true
        arrivalWaiters.forEach { $0.resume() }
        arrivalWaiters = []
        guard !isOpen else { return }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Waits until an operation is held at the gate.
    func reached() async {
        guard !arrived else { return }
        await withCheckedContinuation { arrivalWaiters.append($0) }
    }

    func open() {
        isOpen = true
        waiting.forEach { $0.resume() }
        waiting = []
    }
}

/// A card whose first command with instruction `holdAt` waits at a gate (then goes through as usual).
final class GatedTransport: APDUTransport {
    let inner: any APDUTransport
    let holdAt: UInt8
    let gate: Gate

    init(_ inner: any APDUTransport, holdAt: UInt8, gate: Gate) {
        self.inner = inner
        self.holdAt = holdAt
        self.gate = gate
    }

    func transmit(_ command: [UInt8]) async throws -> [UInt8] {
        if command.count > 1, command[1] == holdAt { await gate.pass() }
        return try await inner.transmit(command)
    }

    func reset() async throws { try await inner.reset() }
}
