import CardDeskAPI
import CardDeskCore
import CertificateAuthority
import Foundation
import Smartcard
import SwiftASN1
import Testing
import VirtualSmartcard
import X509

/// Item 2: a revoked certificate authenticates nothing, and revoking a card's certificate stops its renewal.
@Suite("Security: revoked certificates")
struct RevokedCertificateTests {
    @Test("The renewal's new authentication certificate, once revoked, neither signs in nor drives the renewal; the renewal is cancelled and audited")
    func revokedNewCertificate() async throws {
        try await SecurityFixture.with { fixture in
            let card = try await fixture.issueCard("revoked")
            let renewal = try await fixture.startRenewal(card)
            let token = try #require(renewal.token)
            let engine = fixture.instance.renewal
            // The agent's steps: the signing pair renewed in full, then a new authentication key and its certificate issued.
            let algorithm = try #require(renewal.managementKeyAlgorithm.flatMap(ManagementKey.Algorithm.init(rawValue:)))
            func newKey(_ profile: CertificateProfileKind) async throws -> (csr: [UInt8], attestation: (certificate: [UInt8], issuer: [UInt8])?) {
                _ = try await card.authenticateAdministration(algorithm: algorithm) { witness in
                    try await engine.administer(renewalID: renewal.id, token: token, profile: profile, encryptedWitness: witness)
                }
                let slot = CardSlot.main(for: profile)
                let key = try await card.generateKeyPair(in: slot, algorithm: .p256)
                return (try await CardPrivateKey(session: card, slot: slot, publicKey: key).signingRequestDER(commonName: profile.rawValue), try await card.attestation(of: slot))
            }
            let signingKey = try await newKey(.signing)
            let signing = try await engine.submit(
                renewalID: renewal.id, token: token, profile: .signing, csr: signingKey.csr,
                attestation: signingKey.attestation?.certificate, attestationIssuer: signingKey.attestation?.issuer
            )
            try await card.writeCertificate(signing, into: .signing)
            let signingSerial = SerialNumber(bytes: Array(try Certificate(derEncoded: signing).serialNumber.bytes))
            let proof = try await card.sign(RenewalConfirmationMessage.make(renewalID: renewal.id, profile: .signing, serial: signingSerial), with: .signing)
            _ = try await engine.confirm(renewalID: renewal.id, token: token, profile: .signing, signature: proof.rawRepresentation)
            let authenticationKey = try await newKey(.authentication)
            let csr = authenticationKey.csr
            let issued = try await engine.submit(
                renewalID: renewal.id, token: token, profile: .authentication, csr: csr,
                attestation: authenticationKey.attestation?.certificate, attestationIssuer: authenticationKey.attestation?.issuer
            )
            let newSerial = SerialNumber(bytes: Array(try Certificate(derEncoded: issued).serialNumber.bytes))

            _ = try await fixture.instance.authority.revoke(serial: newSerial, reason: .keyCompromise, actor: "operator:test")

            // The renewal is over: cancelled, audited, and its token works no more.
            let stored = try #require(try await fixture.instance.store.renewal(id: renewal.id))
            #expect(stored.status == .cancelled)
            #expect(try await fixture.audit(.renewalStep).contains { $0.contains("renewal=\(renewal.id) cancelled: certificate \(newSerial.hex) revoked (keyCompromise)") })
            let refused = await #expect(throws: CardDeskError.self) {
                try await engine.submit(renewalID: renewal.id, token: token, profile: .authentication, csr: csr)
            }
            #expect(refused?.code == .authenticationFailed)

            // A signature by the new (revoked) key signs nobody in.
            let challenge = try await fixture.instance.login.challenge()
            let serial = try await card.serial()
            let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
            let login = await #expect(throws: CardDeskError.self) {
                try await fixture.instance.login.login(cardSerial: serial, challenge: challenge, signature: signature.rawRepresentation)
            }
            #expect(login?.code == .authenticationFailed)
        }
    }

    @Test("Revoking the certificate in force: sign-in and renewal with it are refused")
    func revokedCurrentCertificate() async throws {
        try await SecurityFixture.with { fixture in
            let card = try await fixture.issueCard("current")
            _ = try await fixture.signIn(card)
            let current = try #require(try await fixture.instance.store.certificates(cardSerial: try await card.serial()).first { $0.profile == .authentication })
            _ = try await fixture.instance.authority.revoke(serial: current.serial, reason: .keyCompromise, actor: "operator:test")
            await #expect(throws: CardDeskError.self) { try await fixture.signIn(card) }
            await #expect(throws: CardDeskError.self) { try await fixture.startRenewal(card) }
        }
    }
}
