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
            // The agent's steps up to a new authentication key on the card and its certificate issued.
            let staging = CardSlot.staging(for: .authentication)
            let keyChallenge = try await card.adminChallenge()
            let keyAnswer = try await engine.authorise(
                renewalID: renewal.id, token: token, profile: .authentication,
                operation: .generateKey(slot: staging, algorithm: .p256), cardChallenge: keyChallenge
            )
            let key = try await card.generateKeyPair(in: staging, algorithm: .p256, authorisation: keyAnswer)
            let signer = CardPrivateKey(session: card, slot: staging, publicKey: key)
            let request = try await CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName("authentication") }, asyncPrivateKey: .init(signer),
                attributes: .init(), signatureAlgorithm: signer.defaultSignatureAlgorithm
            )
            var coder = DER.Serializer()
            try coder.serialize(request)
            let csr = coder.serializedBytes
            let issued = try await engine.submit(renewalID: renewal.id, token: token, profile: .authentication, csr: csr)
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
            let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: staging)
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
