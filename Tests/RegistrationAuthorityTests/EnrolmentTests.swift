import CardAgent
import CardDeskAPI
import CardDeskTestSupport
import RegistrationAuthority
import CardDeskCore
import Foundation
import Smartcard
import Synchronization
import Testing
import VirtualSmartcard

/// A transport that stops at the Nth APDU as a card pulled out would (test code: nothing in production can fail on purpose).
final class PulledOutAfter: APDUTransport {
    let inner: any APDUTransport
    let limit: Int
    private let count = Mutex(0)

    init(_ inner: any APDUTransport, after limit: Int) {
        self.inner = inner
        self.limit = limit
    }

    func transmit(_ command: [UInt8]) async throws -> [UInt8] {
        guard count.withLock({ $0 += 1; return $0 }) <= limit else {
            throw CardDeskError(.cardRemoved, "The smartcard was removed. Insert it and try again.")
        }
        return try await inner.transmit(command)
    }

    func reset() async throws { try await inner.reset() }
}

@Suite("Enrolling a blank card with a token")
struct EnrolmentTests {
    @Test("A blank card is enrolled: its own management key, PUK and passcode, keys made on it, both certificates; the token is then spent")
    func enrol() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let file = fixture.folder.appendingPathComponent("blank.json")
                let blank = try VirtualPIVCard.blank(file: file, manufacturer: fixture.instance.manufacturer)
                let (token, _) = try await fixture.instance.enrolment.issueToken(userID: fixture.user, keyAlgorithm: .rsa2048, validityDays: 30, actor: "test")
                let card = PIVCardSession(transport: blank)
                let begun = try await EnrolmentClient(server: server, card: card).enrol(token: token, passcode: "24681357") { _ in }
                #expect(try await card.serial() == begun.cardSerial)
                let record = try #require(try await fixture.instance.store.card(serial: begun.cardSerial))
                #expect(record.status == .active && record.userID == fixture.user)
                let good = try await fixture.instance.store.certificates(cardSerial: begun.cardSerial).filter { $0.status == .good }
                #expect(Set(good.map(\.profile)) == Set(CertificateProfileKind.allCases) && good.count == 2)
                // The factory management key, PIN and PUK no longer work; the passcode does, and the card signs in.
                await #expect(throws: CardDeskError.self) { try await card.client.authenticate(with: .factoryDefault) }
                await #expect(throws: CardDeskError.self) { try await card.verifyPIN(PIV.factoryPIN) }
                try await card.verifyPIN("24681357")
                _ = try await LoginTests.signIn(fixture, card)
                // Spent: the same token enrols nothing more.
                let spent = await #expect(throws: CardDeskError.self) { _ = try await server.beginEnrolment(token: token) }
                #expect(spent?.code == .authenticationFailed)
            }
        }
    }

    /// An enrolment stopped as late as possible: both certificates issued, the card never enrolled.
    static func abandonedEnrolment(_ fixture: RenewalFixture, _ server: ServerClient, apdus: Int) async throws -> (serial: String, token: String)? {
        let store = fixture.instance.store
        for stop in stride(from: apdus - 1, to: 1, by: -1) {
            let card = try VirtualPIVCard.blank(file: fixture.folder.appendingPathComponent("left-\(UUID().uuidString).json"), manufacturer: fixture.instance.manufacturer)
            let (token, _) = try await fixture.instance.enrolment.issueToken(userID: fixture.user, keyAlgorithm: .p256, validityDays: 30, actor: "test")
            _ = try? await EnrolmentClient(server: server, card: PIVCardSession(transport: PulledOutAfter(card, after: stop))).enrol(token: token, passcode: "24681357") { _ in }
            let serial = try await PIVCardSession(transport: card).serial()
            if try await store.card(serial: serial)?.status == .enrolling,
               try await store.certificates(cardSerial: serial).filter({ $0.status == .good }).count == 2 {
                return (serial, token)
            }
        }
        return nil
    }

    /// A whole enrolment, counted: its card and how many APDUs it took.
    static func completedEnrolment(_ fixture: RenewalFixture, _ server: ServerClient) async throws -> (serial: String, apdus: Int) {
        let counted = Counter()
        let card = try VirtualPIVCard.blank(file: fixture.folder.appendingPathComponent("done-\(UUID().uuidString).json"), manufacturer: fixture.instance.manufacturer)
        let (token, _) = try await fixture.instance.enrolment.issueToken(userID: fixture.user, keyAlgorithm: .p256, validityDays: 30, actor: "test")
        let begun = try await EnrolmentClient(server: server, card: PIVCardSession(transport: Counting(card, counted))).enrol(token: token, passcode: "24681357") { _ in }
        return (begun.cardSerial, counted.value)
    }

    @Test("An enrolment left with both certificates issued and its token expired: the sweep revokes them and cancels the card; a completed one is untouched")
    func abandoned() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let store = fixture.instance.store
                let completed = try await Self.completedEnrolment(fixture, server)
                let (serial, token) = try #require(try await Self.abandonedEnrolment(fixture, server, apdus: completed.apdus), "an enrolment stopped after both certificates")
                // Before the token has expired (and its grace), nothing is touched.
                #expect(try await fixture.instance.enrolment.sweepAbandoned() == 0)
                fixture.clock.advance(seconds: CardEnrolment.tokenLifetime + CardEnrolment.abandonedAfter + 1)
                #expect(try await fixture.instance.enrolment.sweepAbandoned() == 1)
                let revoked = try await store.certificates(cardSerial: serial)
                #expect(revoked.count == 2 && revoked.allSatisfy { $0.status == .revoked && $0.revocationReason == .cessationOfOperation })
                #expect(try await store.card(serial: serial)?.status == .cancelled)
                // The token enrols nothing now, and a second sweep finds nothing left.
                await #expect(throws: CardDeskError.self) { _ = try await server.beginEnrolment(token: token) }
                #expect(try await fixture.instance.enrolment.sweepAbandoned() == 0)
                // The completed card is as it was.
                #expect(try await store.card(serial: completed.serial)?.status == .active)
                #expect(try await store.certificates(cardSerial: completed.serial).filter { $0.status == .good }.count == 2)
                guard case .intact = try await store.verifyAuditChain() else {
                    Issue.record("the audit chain must verify after the sweep")
                    return
                }
            }
        }
    }

    @Test("A sweep stopped after ending the enrolment (before revoking) finishes when run again")
    func sweepResumes() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let store = fixture.instance.store
                let completed = try await Self.completedEnrolment(fixture, server)
                let (serial, token) = try #require(try await Self.abandonedEnrolment(fixture, server, apdus: completed.apdus))
                fixture.clock.advance(seconds: CardEnrolment.tokenLifetime + CardEnrolment.abandonedAfter + 1)
                // The first half of a sweep, as if it stopped there.
                let record = try #require(try await store.enrolment(tokenHash: CardChallenges.hash(token)))
                #expect(try await store.abandonEnrolment(id: record.id, cardSerial: serial, audit: AuditEvent(action: .cardEnrol, actor: "test", subject: "card:\(serial)", time: fixture.clock.now())))
                #expect(try await store.certificates(cardSerial: serial).filter { $0.status == .good }.count == 2, "the stop left them valid")
                #expect(try await fixture.instance.enrolment.sweepAbandoned() == 0, "nothing new to end")
                #expect(try await store.certificates(cardSerial: serial).allSatisfy { $0.status == .revoked })
            }
        }
    }

    @Test("Pulled out at any step, the enrolment run again with the same token finishes with one valid certificate per profile")
    func interrupted() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                // Every APDU of an enrolment (counted on a run that is not interrupted).
                let counted = Counter()
                let sample = try VirtualPIVCard.blank(file: fixture.folder.appendingPathComponent("sample.json"), manufacturer: fixture.instance.manufacturer)
                let (sampleToken, _) = try await fixture.instance.enrolment.issueToken(userID: fixture.user, keyAlgorithm: .p256, validityDays: 30, actor: "test")
                _ = try await EnrolmentClient(server: server, card: PIVCardSession(transport: Counting(sample, counted))).enrol(token: sampleToken, passcode: "24681357") { _ in }
                let total = counted.value
                #expect(total > 15)
                for stop in stride(from: 1, to: total, by: 1) {
                    let card = try VirtualPIVCard.blank(file: fixture.folder.appendingPathComponent("card-\(stop).json"), manufacturer: fixture.instance.manufacturer)
                    let (token, _) = try await fixture.instance.enrolment.issueToken(userID: fixture.user, keyAlgorithm: .p256, validityDays: 30, actor: "test")
                    await #expect(throws: CardDeskError.self, "stopped at APDU \(stop)") {
                        _ = try await EnrolmentClient(server: server, card: PIVCardSession(transport: PulledOutAfter(card, after: stop))).enrol(token: token, passcode: "24681357") { _ in }
                    }
                    card.reset()
                    let begun = try await EnrolmentClient(server: server, card: PIVCardSession(transport: card)).enrol(token: token, passcode: "24681357") { _ in }
                    let good = try await fixture.instance.store.certificates(cardSerial: begun.cardSerial).filter { $0.status == .good }
                    #expect(good.count == 2 && Set(good.map(\.profile)).count == 2, "stopped at APDU \(stop)")
                    #expect(try await fixture.instance.store.card(serial: begun.cardSerial)?.status == .active, "stopped at APDU \(stop)")
                }
            }
        }
    }

    @Test("Refused: a card that is not blank, an unknown or expired token")
    func refusals() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let used = try await fixture.issueCard("used")
                let (token, _) = try await fixture.instance.enrolment.issueToken(userID: fixture.user, keyAlgorithm: .p256, validityDays: 30, actor: "test")
                let notBlank = await #expect(throws: CardDeskError.self) {
                    _ = try await EnrolmentClient(server: server, card: used).enrol(token: token, passcode: "24681357") { _ in }
                }
                #expect(notBlank?.reason.contains("not blank") == true)
                let unknown = await #expect(throws: CardDeskError.self) { _ = try await server.beginEnrolment(token: "not-a-token") }
                #expect(unknown?.code == .authenticationFailed)
                fixture.clock.advance(seconds: 3601)
                let late = await #expect(throws: CardDeskError.self) { _ = try await server.beginEnrolment(token: token) }
                #expect(late?.reason.contains("more than an hour old") == true)
            }
        }
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func next() { count.withLock { $0 += 1 } }
}

/// Counts the APDUs a run sends.
final class Counting: APDUTransport {
    let inner: any APDUTransport
    let counter: Counter

    init(_ inner: any APDUTransport, _ counter: Counter) {
        self.inner = inner
        self.counter = counter
    }

    func transmit(_ command: [UInt8]) async throws -> [UInt8] {
        counter.next()
        return try await inner.transmit(command)
    }

    func reset() async throws { try await inner.reset() }
}
