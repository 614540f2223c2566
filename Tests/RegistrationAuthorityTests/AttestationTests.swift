import CardAgent
import CardDeskAPI
import CardDeskTestSupport
import CardDeskCore
import Foundation
@testable import RegistrationAuthority
import Smartcard
import Testing
import VirtualSmartcard
import X509

@Suite("Key attestation")
struct AttestationTests {
    /// A blank card from `manufacturer` with a P-256 key generated in 9A and 9C, and CSRs for both.
    static func cardWithKeys(_ folder: URL, _ name: String, manufacturer: VirtualCardManufacturer?) async throws -> (PIVCardSession, [CardSlot: CertificateSigningRequest]) {
        let card = PIVCardSession(transport: try VirtualPIVCard.blank(file: folder.appendingPathComponent("\(name).json"), manufacturer: manufacturer))
        try await card.client.select()
        try await card.client.authenticate(with: .factoryDefault)
        try await card.verifyPIN(PIV.factoryPIN)
        var requests: [CardSlot: CertificateSigningRequest] = [:]
        for slot in [CardSlot.authentication, .signing] {
            let key = try await card.generateKeyPair(in: slot, algorithm: .p256)
            requests[slot] = try await CardPrivateKey(session: card, slot: slot, publicKey: key).signingRequest(commonName: "attested")
        }
        return (card, requests)
    }

    @Test("Only a key the trusted manufacturer's card attests, for exactly that key, passes where attestation is required")
    func policy() async throws {
        try await RenewalFixture.with { fixture in
            let now = fixture.clock.now()
            let trusted = fixture.instance.manufacturer
            let rogue = try VirtualCardManufacturer.open(folder: fixture.folder.appendingPathComponent("rogue-manufacturer"))
            let required = AttestationPolicy(required: true, trusted: [trusted.certificate])

            let (card, requests) = try await Self.cardWithKeys(fixture.folder, "attested", manufacturer: trusted)
            let attestation9A = try #require(try await card.attestation(of: .authentication))
            try required.check(csr: requests[.authentication]!, attestation: attestation9A.certificate, issuer: attestation9A.issuer, now: now)
            // The attestation of another key (9A's, for the 9C key) is refused.
            let otherKey = #expect(throws: CardDeskError.self) {
                try required.check(csr: requests[.signing]!, attestation: attestation9A.certificate, issuer: attestation9A.issuer, now: now)
            }
            #expect(otherKey?.reason.contains("another key") == true)
            // No attestation: refused when required, accepted when not.
            let missing = #expect(throws: CardDeskError.self) { try required.check(csr: requests[.signing]!, attestation: nil, issuer: nil, now: now) }
            #expect(missing?.code == .badProofOfPossession)
            try AttestationPolicy(required: false, trusted: [trusted.certificate]).check(csr: requests[.signing]!, attestation: nil, issuer: nil, now: now)

            // A card from a manufacturer the service does not trust.
            let (rogueCard, rogueRequests) = try await Self.cardWithKeys(fixture.folder, "rogue", manufacturer: rogue)
            let rogueAttestation = try #require(try await rogueCard.attestation(of: .authentication))
            let untrusted = #expect(throws: CardDeskError.self) {
                try required.check(csr: rogueRequests[.authentication]!, attestation: rogueAttestation.certificate, issuer: rogueAttestation.issuer, now: now)
            }
            #expect(untrusted?.reason.contains("manufacturer this service trusts") == true)
            // A key imported or made off the card: a card without an attestation key gives no attestation at all.
            let (plain, _) = try await Self.cardWithKeys(fixture.folder, "plain", manufacturer: nil)
            #expect(try await plain.attestation(of: .authentication) == nil)
        }
    }

    @Test("A card's attestation certificate checked once is remembered by its exact bytes: other bytes are checked, and its dates at every use")
    func rememberedDevice() async throws {
        try await RenewalFixture.with { fixture in
            let now = fixture.clock.now()
            let policy = AttestationPolicy(required: true, trusted: [fixture.instance.manufacturer.certificate])
            let (card, requests) = try await Self.cardWithKeys(fixture.folder, "remembered", manufacturer: fixture.instance.manufacturer)
            let of9A = try #require(try await card.attestation(of: .authentication))
            let of9C = try #require(try await card.attestation(of: .signing))
            #expect(of9A.issuer == of9C.issuer)
            try policy.check(csr: requests[.authentication]!, attestation: of9A.certificate, issuer: of9A.issuer, now: now)
            try policy.check(csr: requests[.signing]!, attestation: of9C.certificate, issuer: of9C.issuer, now: now)

            // The same certificate with its signature altered (same subject, issuer and serial): checked, refused.
            var forged = of9A.issuer
            forged[forged.count - 3] ^= 0x01
            let refused = #expect(throws: CardDeskError.self) {
                try policy.check(csr: requests[.authentication]!, attestation: of9A.certificate, issuer: forged, now: now)
            }
            #expect(refused?.reason.contains("manufacturer this service trusts") == true)

            // The remembered certificate, once it has expired: refused.
            let device = try Certificate(derEncoded: of9A.issuer)
            let later = Timestamp(secondsSince1970: Int64(device.notValidAfter.timeIntervalSince1970) + 86_400)
            let expired = #expect(throws: CardDeskError.self) {
                try policy.check(csr: requests[.authentication]!, attestation: of9A.certificate, issuer: of9A.issuer, now: later)
            }
            #expect(expired?.reason.contains("not valid now") == true)
        }
    }

    @Test("The remembered attestation certificates stay within their limit, the oldest forgotten first")
    func rememberedLimit() async throws {
        try await RenewalFixture.with { fixture in
            var devices = AttestationPolicy.VerifiedDevices()
            let certificate = fixture.instance.manufacturer.certificate
            for index in 0..<50 { devices.remember(certificate, as: [UInt8(index)], limit: 8) }
            #expect(devices.certificates.count == 8)
            #expect(Set(devices.certificates.keys) == Set((42..<50).map { [UInt8($0)] }))
            #expect(devices.order.count - devices.start == 8)
            #expect(devices.order.count <= 16)
            // Remembered twice: once.
            devices.remember(certificate, as: [49], limit: 8)
            #expect(devices.certificates.count == 8 && devices.order.count - devices.start == 8)
        }
    }

    @Test("A renewal's CSR without attestation, or attested for another key, is refused and audited; the card's own attestation passes")
    func renewal() async throws {
        try await RenewalFixture.with { fixture in
            let card = try await fixture.issueCard("renewed")
            let view = try await fixture.start(card)
            let token = try #require(view.token)
            let engine = fixture.instance.renewal
            let algorithm = try #require(view.managementKeyAlgorithm.flatMap(ManagementKey.Algorithm.init(rawValue:)))
            _ = try await card.authenticateAdministration(algorithm: algorithm) { witness in
                try await engine.administer(renewalID: view.id, token: token, profile: .signing, encryptedWitness: witness)
            }
            let key = try await card.generateKeyPair(in: .signing, algorithm: .p256)
            let csr = try await CardPrivateKey(session: card, slot: .signing, publicKey: key).signingRequestDER(commonName: "signing")
            let without = await #expect(throws: CardDeskError.self) {
                _ = try await engine.submit(renewalID: view.id, token: token, profile: .signing, csr: csr)
            }
            #expect(without?.code == .badProofOfPossession)
            let ofAuthentication = try #require(try await card.attestation(of: .authentication))
            await #expect(throws: CardDeskError.self) {
                _ = try await engine.submit(renewalID: view.id, token: token, profile: .signing, csr: csr,
                                            attestation: ofAuthentication.certificate, attestationIssuer: ofAuthentication.issuer)
            }
            let own = try #require(try await card.attestation(of: .signing))
            _ = try await engine.submit(renewalID: view.id, token: token, profile: .signing, csr: csr, attestation: own.certificate, attestationIssuer: own.issuer)
            #expect(try await fixture.audit(.renewalStep).filter { $0.contains("key attestation refused") }.count == 2)
        }
    }
}
