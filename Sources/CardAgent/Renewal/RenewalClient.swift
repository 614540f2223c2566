import CardDeskAPI
public import CardDeskCore
import Crypto
import Foundation
import SwiftASN1
public import Smartcard
import X509

/// Drives a renewal from the workstation: the card does the key work, the server decides and issues.
/// Run it again after any interruption and it continues from what the card and the server already have.
public struct RenewalClient: Sendable {
    public enum Stage: String, Sendable, CaseIterable {
        case pending = "Pending"
        case generatingKey = "Generating key"
        case issuing = "Issuing"
        case writing = "Writing"
        case done = "Done"
    }

    let server: ServerClient
    let card: any SmartcardSession

    public init(server: ServerClient, card: any SmartcardSession) {
        self.server = server
        self.card = card
    }

    /// Renews every certificate on the card. The passcode is checked by the card; it never leaves the workstation.
    public func renew(passcode: String, progress: @Sendable (CertificateProfileKind, Stage) -> Void) async throws {
        try await card.verifyPIN(passcode)
        let serial = try await card.serial()
        let challenge = try await server.challenge()
        let signature = try await card.sign(RenewalStartMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
        var view = try await server.startRenewal(.init(cardSerial: serial, challenge: challenge, signature: Data(signature.rawRepresentation)))
        if view.done {
            // Renewed already (an earlier run finished on the server but stopped before saying so).
            for item in view.items { progress(item.profile, .done) }
            return
        }
        guard let token = view.token else { throw CardDeskError(.internalFailure, "The server started no renewal session.") }
        for profile in CertificateProfileKind.allCases {
            guard let item = view.items.first(where: { $0.profile == profile }) else { continue }
            progress(profile, .pending)
            if item.step != .done {
                view = try await renew(item, renewal: view.id, token: token, progress: progress)
            }
            progress(profile, .done)
        }
    }

    private func renew(
        _ item: RenewalView.Item, renewal: String, token: String, progress: @Sendable (CertificateProfileKind, Stage) -> Void
    ) async throws -> RenewalView {
        let profile = item.profile
        let slot = CardSlot.main(for: profile)
        let staging = CardSlot.staging(for: slot)
        var issued: Certificate? = try item.newCertificate.map { try Certificate(derEncoded: Array($0)) }

        // Already on the card (the confirmation was what got lost)?
        let installed = try await card.certificate(in: slot)
        if let issued, installed == issued {
            return try await confirm(profile, certificate: issued, renewal: renewal, token: token)
        }
        // Is the issued certificate's key staged on the card? If not, the card needs a (new) key.
        let stagedKey = try await card.publicKey(in: staging)
        if issued == nil || stagedKey != issued?.publicKey {
            var key = stagedKey
            // A key staged by an interrupted run of this renewal is used; a new renewal always starts with a new key.
            if key == nil || item.step < .keyAuthorised {
                progress(profile, .generatingKey)
                let algorithm: CardKeyAlgorithm = (try await card.publicKey(in: slot)).map { P256.Signing.PublicKey($0) != nil } == true ? .p256 : .rsa2048
                let operation = AdminOperation.generateKey(slot: staging, algorithm: algorithm)
                key = try await card.generateKeyPair(in: staging, algorithm: algorithm, authorisation: try await authorise(profile, operation, renewal: renewal, token: token))
            }
            guard let key else { throw CardDeskError(.internalFailure, "The card generated no key.") }
            progress(profile, .issuing)
            let signer = CardPrivateKey(session: card, slot: staging, publicKey: key)
            let csr = try await CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName(profile.rawValue) }, asyncPrivateKey: .init(signer),
                attributes: .init(), signatureAlgorithm: signer.defaultSignatureAlgorithm
            )
            var coder = DER.Serializer()
            try coder.serialize(csr)
            let answer = try await server.submit(renewal: renewal, token: token, .init(profile: profile, csr: Data(coder.serializedBytes)))
            issued = try Certificate(derEncoded: Array(answer.certificate))
        }
        guard let issued else { throw CardDeskError(.internalFailure, "No certificate was issued.") }
        progress(profile, .writing)
        var coder = DER.Serializer()
        try coder.serialize(issued)
        let der = coder.serializedBytes
        let operation = AdminOperation.installCertificate(slot: slot, keyFrom: staging, certificateSHA256: Array(SHA256.hash(data: der)))
        try await card.installCertificate(der, into: slot, keyFrom: staging, authorisation: try await authorise(profile, operation, renewal: renewal, token: token))
        return try await confirm(profile, certificate: issued, renewal: renewal, token: token)
    }

    private func authorise(_ profile: CertificateProfileKind, _ operation: AdminOperation, renewal: String, token: String) async throws -> AdminAuthorisation {
        let challenge = try await card.adminChallenge()
        let answer = try await server.authorise(renewal: renewal, token: token, .init(profile: profile, operation: operation, cardChallenge: Data(challenge)))
        return AdminAuthorisation(challenge: challenge, response: Array(answer.response))
    }

    private func confirm(_ profile: CertificateProfileKind, certificate: Certificate, renewal: String, token: String) async throws -> RenewalView {
        let slot = CardSlot.main(for: profile)
        let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
        let message = RenewalConfirmationMessage.make(renewalID: renewal, profile: profile, serial: serial)
        let signature = try await card.sign(message, with: slot)
        return try await server.confirm(renewal: renewal, token: token, .init(profile: profile, signature: Data(signature.rawRepresentation)))
    }
}
