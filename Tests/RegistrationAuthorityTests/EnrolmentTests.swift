import CardAgent
import CardDeskAPI
import CardDeskTestSupport
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
