import CardAgent
import CardDeskTestSupport
import CardDeskAPI
import CardDeskCore
import CardDeskServerKit
import CardDeskStore
import CardDeskWeb
import Hummingbird
import CertificateAuthority
import Crypto
import Foundation
import Logging
@testable import RegistrationAuthority
import Smartcard
import Synchronization
import Testing
import VirtualSmartcard
import X509

@Suite("Renewal engine")
struct RenewalEngineTests {
    @Test("Renewal outside the window is refused with the date it opens; expired certificates go to the RA")
    func window() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("long", validityDays: 365)
            let refused = await #expect(throws: CardDeskError.self) { try await fixture.start(card) }
            #expect(refused?.code == .renewalNotOpen)
            let opens = fixture.clock.now().adding(seconds: (365 - 90) * 86_400).dateDescription
            #expect(refused?.reason == "Renewal is not available yet: it opens on \(opens), 90 days before your certificates expire.")

            let short = try await fixture.issueCard("short", validityDays: 10)
            fixture.clock.advance(seconds: 11 * 86_400)
            let expired = await #expect(throws: CardDeskError.self) { try await fixture.start(short) }
            #expect(expired?.code == .certificatesExpired)
            #expect(expired?.reason.contains("ask your Registration Authority") == true)
        }
    }

    @Test("A replayed or expired challenge is refused; so is a signature by another card's key")
    func authentication() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("a")
            let other = try await fixture.issueCard("b")
            let serial = try await card.serial()

            let challenge = try await fixture.instance.renewal.challenge()
            let signature = try await card.sign(RenewalStartMessage.make(challenge: challenge, cardSerial: serial), with: .authentication).rawRepresentation
            _ = try await fixture.instance.renewal.start(cardSerial: serial, challenge: challenge, signature: signature)
            let replay = await #expect(throws: CardDeskError.self) {
                try await fixture.instance.renewal.start(cardSerial: serial, challenge: challenge, signature: signature)
            }
            #expect(replay?.code == .authenticationFailed)

            let late = try await fixture.instance.renewal.challenge()
            let lateSignature = try await card.sign(RenewalStartMessage.make(challenge: late, cardSerial: serial), with: .authentication).rawRepresentation
            fixture.clock.advance(seconds: 121)
            let expired = await #expect(throws: CardDeskError.self) {
                try await fixture.instance.renewal.start(cardSerial: serial, challenge: late, signature: lateSignature)
            }
            #expect(expired?.code == .authenticationFailed)

            let impostor = await #expect(throws: CardDeskError.self) { try await fixture.start(other, claiming: serial) }
            #expect(impostor?.code == .authenticationFailed)
            #expect(impostor?.reason.contains("not the card it claims") == true)
        }
    }

    @Test("The server answers the card's management-key witness only for the slot whose turn it is, and the answer opens the card")
    func administration() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("c")
            let view = try await fixture.start(card)
            let token = try #require(view.token)
            let algorithm = try #require(view.managementKeyAlgorithm.flatMap(ManagementKey.Algorithm.init(rawValue:)))
            #expect(algorithm == .aes256)
            #expect(view.items.map(\.profile) == [.signing, .authentication], "the signing pair first")
            let engine = fixture.instance.renewal
            // Without the card's administration, the card refuses to generate a key.
            let closed = await #expect(throws: CardDeskError.self) { _ = try await card.generateKeyPair(in: .signing, algorithm: .p256) }
            #expect(closed?.code == .notAuthorised)
            // Authentication is not its turn: the signing pair is renewed first.
            let early = await #expect(throws: CardDeskError.self) {
                _ = try await card.authenticateAdministration(algorithm: algorithm) { witness in
                    try await engine.administer(renewalID: view.id, token: token, profile: .authentication, encryptedWitness: witness)
                }
            }
            #expect(early?.code == .notAuthorised)
            // A wrong token, and a witness of the wrong size, are refused.
            let wrongToken = await #expect(throws: CardDeskError.self) {
                _ = try await engine.administer(renewalID: view.id, token: "not-the-token", profile: .signing, encryptedWitness: Array(repeating: 0, count: 16))
            }
            #expect(wrongToken?.code == .authenticationFailed)
            await #expect(throws: CardDeskError.self) {
                _ = try await engine.administer(renewalID: view.id, token: token, profile: .signing, encryptedWitness: [1, 2, 3])
            }
            // The signing slot's turn: the server's answer opens the card, which then generates the key.
            _ = try await card.authenticateAdministration(algorithm: algorithm) { witness in
                try await engine.administer(renewalID: view.id, token: token, profile: .signing, encryptedWitness: witness)
            }
            _ = try await card.generateKeyPair(in: .signing, algorithm: .p256)
            // A card reset closes it again.
            try await card.reset()
            try await card.verifyPIN("123456")
            await #expect(throws: CardDeskError.self) { _ = try await card.generateKeyPair(in: .signing, algorithm: .p256) }
        }
    }

    @Test("The card's witness rides with the start: answered only for a renewal that goes on; one answer serves the card session, and the pairs are still issued one at a time")
    func administrationAtStart() async throws {
        try await RenewalFixture.with { fixture in
            let engine = fixture.instance.renewal
            // Not due yet: refused, with no answer to the witness (the card stays closed).
            let notDue = try await fixture.issueCard("not-due", validityDays: 365)
            let refused = await #expect(throws: CardDeskError.self) { try await fixture.start(notDue, withWitness: true) }
            #expect(refused?.code == .renewalNotOpen)
            await #expect(throws: CardDeskError.self) { _ = try await notDue.generateKeyPair(in: .signing, algorithm: .p256) }

            let card = try await fixture.issueCard("at-start")
            let view = try await fixture.start(card, withWitness: true)
            let token = try #require(view.token)
            let answer = try #require(view.administration)
            #expect(view.items.map(\.step) == [.keyAuthorised, .keyAuthorised])
            let algorithm = try #require(try await card.managementKeyAlgorithm())
            #expect(algorithm.rawValue == view.managementKeyAlgorithm)
            _ = try await card.completeAdministration(algorithm: algorithm, witness: Array(answer.witness), challenge: Array(answer.challenge))
            // The card is administered for its session: both slots' keys can be generated without another answer.
            let signingKey = try await card.generateKeyPair(in: .signing, algorithm: .p256)
            let authenticationKey = try await card.generateKeyPair(in: .authentication, algorithm: .p256)
            // But the server issues one pair at a time: the authentication pair waits until the signing pair is done.
            let csr = try await CardPrivateKey(session: card, slot: .authentication, publicKey: authenticationKey).signingRequestDER(commonName: "authentication")
            let attested = try #require(try await card.attestation(of: .authentication))
            let early = await #expect(throws: CardDeskError.self) {
                _ = try await engine.submit(renewalID: view.id, token: token, profile: .authentication, csr: csr,
                                            attestation: attested.certificate, attestationIssuer: attested.issuer)
            }
            #expect(early?.code == .notAuthorised)
            #expect(early?.reason == "The signing certificate is renewed first: one key pair at a time.")
            let signingCSR = try await CardPrivateKey(session: card, slot: .signing, publicKey: signingKey).signingRequestDER(commonName: "signing")
            let signingAttested = try #require(try await card.attestation(of: .signing))
            _ = try await engine.submit(renewalID: view.id, token: token, profile: .signing, csr: signingCSR,
                                        attestation: signingAttested.certificate, attestationIssuer: signingAttested.issuer)
            // The answer is audited with the start, in its transaction.
            let answered = try await fixture.audit(.renewalStep).filter { $0.contains("card administration answered") }
            #expect(answered.count == 1)
            #expect(answered.first?.contains("started: ") == true)
            #expect(answered.first?.hasSuffix("card administration answered (signing keyAuthorised, authentication keyAuthorised)") == true)
        }
    }

    @Test("After renewal the new key authenticates and the old one does not")
    func oldKeyFails() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("d")
            let before = try #require(try await card.certificate(in: .authentication))
            let server = try await LiveServer.start(fixture.instance)
            try await RenewalClient(server: ServerClient(baseURL: server.url), card: card).renew(passcode: "123456") { _, _ in }
            await server.stop()
            // The renewal resets the card when it ends (nothing stays open): the passcode again, as at a new sign-in.
            try await card.verifyPIN("123456")

            let after = try #require(try await card.certificate(in: .authentication))
            #expect(after != before)
            let oldRecord = try #require(try await fixture.instance.store.certificate(serial: SerialNumber(bytes: Array(before.serialNumber.bytes))))
            #expect(oldRecord.status == .revoked)
            #expect(oldRecord.revocationReason == .superseded)
            #expect(oldRecord.supersededBy == SerialNumber(bytes: Array(after.serialNumber.bytes)))

            // The new key signs in: the server answers with the finished renewal.
            let withNew = try await fixture.start(card)
            #expect(withNew.done)
            #expect(withNew.token == nil)
            // A day later the window (now closed) is what refuses, still after a successful sign-in.
            fixture.clock.advance(seconds: 86_401)
            let later = await #expect(throws: CardDeskError.self) { try await fixture.start(card) }
            #expect(later?.code == .renewalNotOpen)
            // The old key is gone: a PIV card generates the new key in the slot it replaces.
            #expect(try await card.holdsKey(of: after, in: .authentication))
            #expect(try await !card.holdsKey(of: before, in: .authentication))
            guard case .intact = try await fixture.instance.store.verifyAuditChain() else {
                Issue.record("the audit chain must verify after a renewal")
                return
            }
        }
    }

    @Test("The third self-renewal in a row is refused (default policy: two), plainly, in the status and at the start")
    func selfRenewalLimit() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("limit")
            let serial = try await card.serial()
            let server = try await LiveServer.start(fixture.instance)
            let client = ServerClient(baseURL: server.url)
            for round in 1...2 {
                try await RenewalClient(server: client, card: card).renew(passcode: "123456") { _, _ in }
                try await card.verifyPIN("123456")
                // Into the renewal window of the certificates just issued (three years, renewal in the last 90 days).
                let expiry = try #require(try await card.certificate(in: .authentication)).notValidAfter
                fixture.clock.advance(seconds: Int64(expiry.timeIntervalSince1970) - fixture.clock.now().secondsSince1970 - 80 * 86_400)
                let status = try await fixture.instance.renewal.status(cardSerial: serial)
                #expect(status.renewalAvailable == (round < 2), "after \(round) self-renewals")
            }
            let status = try await fixture.instance.renewal.status(cardSerial: serial)
            #expect(status.message == "You have renewed this card yourself 2 times in a row, the most the policy allows: this time your Registration Authority must renew it. Take your card to them before your certificates expire.")
            let refused = await #expect(throws: CardDeskError.self) {
                try await RenewalClient(server: client, card: card).renew(passcode: "123456") { _, _ in }
            }
            #expect(refused?.code == .raRenewalRequired)
            #expect(refused?.reason == status.message)
            await server.stop()
            // The card still works: only its renewal waits for the RA.
            #expect(try await card.certificate(in: .authentication) != nil)
        }
    }

    @Test("A renewal is 5 requests and 5 transactions: the start uses its challenge and answers the card's administration; each issuance and revocation carries its step and its OCSP answer; the second key's request goes with the first key's confirmation")
    func commitsPerRenewal() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("commits")
            let before = try #require(try await card.certificate(in: .authentication))
            let server = try await LiveServer.start(fixture.instance)
            let start = fixture.instance.store.commitStatistics.transactions
            let transport = CountingTransport()
            try await RenewalClient(server: ServerClient(baseURL: server.url, transport: transport), card: card).renew(passcode: "123456") { _, _ in }
            let transactions = fixture.instance.store.commitStatistics.transactions - start
            await server.stop()
            // The start (its challenge used, written nowhere before, the renewal created and the card's administration
            // answered); per key pair: issuance with its step, revocation of the old certificate with its step.
            #expect(transactions == 5)
            // A challenge, the start, the signing key's request, its confirmation with the authentication key's
            // request, the authentication key's confirmation.
            let requests = transport.requests.withLock { $0 }.map { $0.replacingOccurrences(of: #"/renewals/[0-9a-f-]{36}/"#, with: "/renewals/ID/", options: .regularExpression) }
            #expect(requests == [
                "POST /api/v1/challenges", "POST /api/v1/renewals", "POST /api/v1/renewals/ID/certificates",
                "POST /api/v1/renewals/ID/confirmations", "POST /api/v1/renewals/ID/confirmations",
            ])
            try await card.verifyPIN("123456")
            let after = try #require(try await card.certificate(in: .authentication))
            let store = fixture.instance.store
            let newAnswer = try #require(try await store.presignedAnswer(serial: SerialNumber(bytes: Array(after.serialNumber.bytes))))
            #expect(newAnswer.status == .good)
            let oldAnswer = try #require(try await store.presignedAnswer(serial: SerialNumber(bytes: Array(before.serialNumber.bytes))))
            #expect(oldAnswer.status == .revoked)
            // Every step is in the audit log, with the issuance and revocation it went with.
            let steps = try await fixture.audit(.renewalStep).filter { $0.contains("issued") || $0.contains("installed") }
            #expect(steps.count == 4)
            // One administration for the card session, with the start.
            let administrations = try await fixture.audit(.renewalStep).filter { $0.contains("card administration answered") }
            #expect(administrations.count == 1 && administrations.first?.contains("started: ") == true)
            guard case .intact = try await store.verifyAuditChain() else {
                Issue.record("the audit chain must verify after a renewal")
                return
            }
        }
    }

    @Test("A confirmation with the next key's request: the old certificate revoked and the next one issued, each in its own transaction; sent again after a lost answer it repeats itself; refused for the key it confirms, and when the confirmation fails nothing is issued")
    func confirmationWithNext() async throws {
        try await RenewalFixture.with { fixture in
            let engine = fixture.instance.renewal, store = fixture.instance.store
            let card = try await fixture.issueCard("with-next")
            let oldSigning = try #require(try await card.certificate(in: .signing))
            let view = try await fixture.start(card, withWitness: true)
            #expect(view.takesNextWithConfirmation == true)
            let token = try #require(view.token), answer = try #require(view.administration)
            let algorithm = try #require(try await card.managementKeyAlgorithm())
            _ = try await card.completeAdministration(algorithm: algorithm, witness: Array(answer.witness), challenge: Array(answer.challenge))
            func request(_ slot: CardSlot, _ profile: CertificateProfileKind) async throws -> (RenewalAPI.Submit, P256.Signing.PublicKey) {
                let key = try await card.generateKeyPair(in: slot, algorithm: .p256)
                let csr = try await CardPrivateKey(session: card, slot: slot, publicKey: key).signingRequestDER(commonName: profile.rawValue)
                let attested = try #require(try await card.attestation(of: slot))
                let submit = RenewalAPI.Submit(profile: profile, csr: Data(csr), attestation: Data(attested.certificate), attestationIssuer: Data(attested.issuer))
                return (submit, try #require(P256.Signing.PublicKey(key)))
            }
            let (signing, _) = try await request(.signing, .signing)
            let signingDER = try await engine.submit(
                renewalID: view.id, token: token, profile: .signing, csr: Array(signing.csr), attestation: signing.attestation.map(Array.init),
                attestationIssuer: signing.attestationIssuer.map(Array.init)
            )
            let newSigning = try Certificate(derEncoded: signingDER)
            try await card.writeCertificate(signingDER, into: .signing)
            let (authentication, authenticationKey) = try await request(.authentication, .authentication)
            let serial = SerialNumber(bytes: Array(newSigning.serialNumber.bytes))
            let signature = Array(try await card.sign(RenewalConfirmationMessage.make(renewalID: view.id, profile: .signing, serial: serial), with: .signing).rawRepresentation)
            let issuedBefore = try await store.certificates(renewalID: view.id).count

            // The request for the key being confirmed: refused before anything is done.
            let same = await #expect(throws: CardDeskError.self) {
                _ = try await engine.confirm(renewalID: view.id, token: token, profile: .signing, signature: signature, next: signing)
            }
            #expect(same?.code == .invalidInput)
            // A confirmation that fails (signed by another key): nothing revoked, nothing issued.
            let forged = Array(try await card.sign(RenewalConfirmationMessage.make(renewalID: view.id, profile: .signing, serial: serial), with: .authentication).rawRepresentation)
            let refused = await #expect(throws: CardDeskError.self) {
                _ = try await engine.confirm(renewalID: view.id, token: token, profile: .signing, signature: forged, next: authentication)
            }
            #expect(refused?.code == .authenticationFailed)
            #expect(try await store.certificate(serial: SerialNumber(bytes: Array(oldSigning.serialNumber.bytes)))?.status == .good)
            #expect(try await store.certificates(renewalID: view.id).count == issuedBefore)

            let transactions = store.commitStatistics.transactions
            let confirmed = try await engine.confirm(renewalID: view.id, token: token, profile: .signing, signature: signature, next: authentication)
            // The revocation with its step, then the issuance with its step.
            #expect(store.commitStatistics.transactions - transactions == 2)
            #expect(confirmed.items.map(\.step) == [.done, .issued])
            let der = try #require(confirmed.items.last?.newCertificate)
            let newAuthentication = try Certificate(derEncoded: Array(der))
            #expect(P256.Signing.PublicKey(newAuthentication.publicKey)?.rawRepresentation == authenticationKey.rawRepresentation)
            let oldRecord = try #require(try await store.certificate(serial: SerialNumber(bytes: Array(oldSigning.serialNumber.bytes))))
            #expect(oldRecord.status == .revoked && oldRecord.revocationReason == .superseded && oldRecord.supersededBy == serial)

            // The answer was lost: the same request again finds both halves done and answers the same certificate.
            let again = try await engine.confirm(renewalID: view.id, token: token, profile: .signing, signature: signature, next: authentication)
            #expect(again.items.map(\.step) == [.done, .issued])
            #expect(again.items.last?.newCertificate == der)
            #expect(try await store.certificates(renewalID: view.id).filter { $0.status == .good }.count == 2)

            // The last confirmation finishes the renewal.
            try await card.writeCertificate(Array(der), into: .authentication)
            let last = Array(try await card.sign(RenewalConfirmationMessage.make(
                renewalID: view.id, profile: .authentication, serial: SerialNumber(bytes: Array(newAuthentication.serialNumber.bytes))
            ), with: .authentication).rawRepresentation)
            let done = try await engine.confirm(renewalID: view.id, token: token, profile: .authentication, signature: last)
            #expect(done.done)
            guard case .intact = try await store.verifyAuditChain() else {
                Issue.record("the audit chain must verify after a renewal")
                return
            }
        }
    }

    @Test("A renewal's stored state is JSON every version reads, written and read directly; earlier states, with the certificate in them, still read")
    func storedStateCoding() throws {
        let der: [UInt8] = [0x30, 0x82, 0x02, 0x54] + (0..<600).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let old = SerialNumber(bytes: [0x01, 0x02, 0x03]), new = SerialNumber(bytes: [0x7F, 0x00, 0xA0] + (0..<17).map { UInt8($0) })
        let state = RenewalState(items: [
            .init(profile: .signing, step: .issued, oldSerial: old, newSerial: new),
            .init(profile: .authentication, step: .pending, oldSerial: new),
        ])
        // Written directly, read back directly, and exactly what JSONDecoder reads (so earlier versions read it too).
        let stored = state.stored
        #expect(RenewalState.parseStored(stored) == state)
        #expect(try RenewalState(stored: stored) == state)
        #expect(try JSONDecoder().decode(RenewalState.self, from: Data(stored.utf8)) == state)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stored.utf8)) as? [String: Any])
        let items = try #require(object["items"] as? [[String: Any]])
        #expect(items.map { $0["step"] as? String } == ["issued", "pending"])
        #expect(items[0]["newSerial"] as? String == new.hex)
        #expect(items[1]["newSerial"] == nil)
        // And what JSONEncoder writes (other key order, escaped slashes) reads the same, through JSONDecoder.
        let encoded = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        #expect(try RenewalState(stored: encoded) == state)

        // What earlier versions stored: the certificate in the state, as base64 text or as an array of numbers.
        let serialJSON = String(decoding: try JSONEncoder().encode(old), as: UTF8.self)
        for certificate in ["\"\(Data(der).base64EncodedString())\"", "[" + der.map(String.init).joined(separator: ",") + "]"] {
            let legacy = #"{"items":[{"profile":"signing","step":"issued","oldSerial":\#(serialJSON),"newSerial":\#(serialJSON),"newCertificate":\#(certificate)},"#
                + #"{"profile":"authentication","step":"pending","oldSerial":\#(serialJSON)}]}"#
            #expect(RenewalState.parseStored(legacy) == nil)
            let read = try RenewalState(stored: legacy)
            #expect(read.items.map(\.step) == [.issued, .pending])
            #expect(read.items.map(\.newSerial) == [old, nil])
            #expect(RenewalState.parseStored(read.stored) == read)
        }
        // Anything else is refused, not half read.
        for bad in [
            #"{"items":[{"profile":"signing","step":"finished","oldSerial":"0102"}]}"#,
            #"{"items":[{"profile":"signing","step":"issued"}]}"#,
            #"{"items":[{"profile":"signing","step":"issued","oldSerial":"not hex"}]}"#,
            "", "{",
        ] {
            #expect(RenewalState.parseStored(bad) == nil, "\(bad)")
            #expect(throws: (any Error).self, "\(bad)") { try RenewalState(stored: bad) }
        }
        // A key twice is not the form `stored` writes (JSONDecoder then decides).
        #expect(RenewalState.parseStored(#"{"items":[{"profile":"signing","step":"issued","oldSerial":"0102","oldSerial":"0304"}]}"#) == nil)
        // Whatever the direct reader accepts, JSONDecoder reads alike: the stored form changed at one place (a byte
        // replaced, removed, or a stretch repeated), thousands of ways.
        var generator = SystemRandomNumberGenerator()
        let bytes = Array(stored.utf8)
        let replacements = Array(#"{}[]:,"\ 0Aaé"#.utf8) + [0x00, 0xFF]
        var accepted = 0
        for _ in 0..<5_000 {
            var mutated = bytes
            let position = Int.random(in: 0..<mutated.count, using: &generator)
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: mutated[position] = replacements.randomElement(using: &generator)!
            case 1: mutated.remove(at: position)
            default:
                let end = min(mutated.count, position + Int.random(in: 1...40, using: &generator))
                mutated.insert(contentsOf: mutated[position..<end], at: end)
            }
            let text = String(decoding: mutated, as: UTF8.self)
            guard let direct = RenewalState.parseStored(text) else { continue }
            accepted += 1
            #expect(try JSONDecoder().decode(RenewalState.self, from: Data(text.utf8)) == direct, "\(text)")
        }
        // Some changes keep a readable state (a serial's digit, a repeated item): the check above did run.
        #expect(accepted > 0)
    }
}


@Suite("Renewal at scale")
struct RenewalScaleTests {
    @Test("200 renewals of 200 different cards at once against one server all succeed, with no duplicate serial")
    func twoHundredAtOnce() async throws {
        try await RenewalFixture.with { fixture in
            var cards: [PIVCardSession] = []
            for index in 0..<200 { cards.append(try await fixture.issueCard("card-\(index)")) }
            let server = try await LiveServer.start(fixture.instance)
            let client = ServerClient(baseURL: server.url)
            let failures = try await withThrowingTaskGroup(of: String?.self) { group in
                for card in cards {
                    group.addTask {
                        do {
                            try await RenewalClient(server: client, card: card).renew(passcode: "123456") { _, _ in }
                            return nil
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                var failures: [String] = []
                for try await failure in group { if let failure { failures.append(failure) } }
                return failures
            }
            await server.stop()
            #expect(failures.isEmpty, "\(failures.count) renewals failed, first: \(failures.first ?? "")")

            // 200 cards × 2 certificates, issued then renewed: 800 certificates, 800 distinct serials.
            var serials = Set<SerialNumber>()
            var good = 0
            for card in cards {
                for record in try await fixture.instance.store.certificates(cardSerial: try await card.serial()) {
                    serials.insert(record.serial)
                    if record.status == .good { good += 1 }
                }
                #expect(try await card.certificate(in: .authentication).map { SerialNumber(bytes: Array($0.serialNumber.bytes)) }.map(serials.contains) == true)
            }
            #expect(serials.count == 800)
            #expect(good == 400, "exactly the new certificates stay valid")
            guard case .intact = try await fixture.instance.store.verifyAuditChain() else {
                Issue.record("the audit chain must verify")
                return
            }
        }
    }
}

/// The agent's own transport, counting what it sends ("METHOD /path").
final class CountingTransport: ServerTransport {
    let inner = URLSessionTransport()
    let requests = Mutex<[String]>([])

    func exchange(method: String, url: URL, headers: [(name: String, value: String)], body: Data?) async throws -> (status: Int, body: Data) {
        requests.withLock { $0.append("\(method) \(url.path)") }
        return try await inner.exchange(method: method, url: url, headers: headers, body: body)
    }
}
