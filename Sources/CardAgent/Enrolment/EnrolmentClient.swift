public import CardDeskAPI
public import CardDeskCore
import Foundation
public import Smartcard
import X509

/// Enrols a blank (factory-default) PIV card at the workstation with an RA's token: the card gets its own
/// management key and PUK (chosen by the server, which keeps them sealed), its identity (CHUID), the holder's
/// passcode (typed here, never sent), a key pair generated on the card for each profile, and both certificates.
/// Run again with the same token after an interruption, it continues: each step accepts a card that already has it.
public struct EnrolmentClient: Sendable {
    let server: ServerClient
    let card: PIVCardSession

    public init(server: ServerClient, card: PIVCardSession) {
        self.server = server
        self.card = card
    }

    public func enrol(token: String, passcode: String, progress: @Sendable (String) -> Void) async throws -> EnrolmentAPI.Begun {
        let piv = card.client
        try await piv.select()
        let begun = try await server.beginEnrolment(token: token)
        guard let algorithm = ManagementKey.Algorithm(rawValue: begun.managementKeyAlgorithm),
              let newKey = try? ManagementKey(algorithm: algorithm, bytes: Array(begun.managementKey)),
              let keyAlgorithm = CardKeyAlgorithm(rawValue: begun.keyAlgorithm) else {
            throw CardDeskError(.internalFailure, "The server's answer for this enrolment cannot be used.")
        }
        // The management key: the factory one on a blank card; the new one on a card an earlier run got this far with.
        do {
            try await piv.authenticate(with: .factoryDefault)
            do {
                try await piv.setManagementKey(newKey)
                progress("Management key set.")
            } catch let error as CardDeskError where error.code == .unsupportedCard {
                try await server.keepFactoryManagementKey(token: token)
                progress("This card cannot change its management key: the factory key is kept (sealed on the server).")
            }
        } catch let error as CardDeskError where error.code == .notAuthorised {
            do {
                try await piv.authenticate(with: newKey)
            } catch let refused as CardDeskError where refused.code == .notAuthorised {
                throw CardDeskError(.notAuthorised, "This card is not blank: its management key is not the factory one. Use a new card, or reset this one first.")
            }
        }
        try await piv.writeObject(PIV.Object.chuid, PIV.chuid(guid: Array(begun.guid)))
        // The PUK, then the passcode: from the factory values, or already set by an earlier run.
        do {
            try await piv.changePUK(current: PIV.factoryPUK, new: begun.puk)
        } catch let error as CardDeskError where error.code == .notAuthorised {
            try await piv.changePUK(current: begun.puk, new: begun.puk)
        }
        do {
            try await piv.changePIN(current: PIV.factoryPIN, new: passcode)
        } catch let error as CardDeskError where error.code == .wrongPasscode {
            // Set by an earlier run: the passcode typed now must be it.
            _ = error
        }
        try await card.verifyPIN(passcode)
        progress("Passcode set on the card.")
        for profile in CertificateProfileKind.allCases {
            let slot = CardSlot.main(for: profile)
            let publicKey = try await card.generateKeyPair(in: slot, algorithm: keyAlgorithm)
            let csr = try await CardPrivateKey(session: card, slot: slot, publicKey: publicKey).signingRequestDER(commonName: begun.cardSerial)
            let attestation = try await card.attestation(of: slot)
            let issued = try await server.submitEnrolment(token: token, .init(
                profile: profile, csr: Data(csr), attestation: attestation.map { Data($0.certificate) }, attestationIssuer: attestation.map { Data($0.issuer) }
            ))
            try await card.writeCertificate(Array(issued.certificate), into: slot)
            progress("\(profile == .authentication ? "Authentication" : "Signing") certificate written.")
        }
        let signature = try await card.sign(EnrolmentMessage.make(enrolmentID: begun.enrolmentID, cardSerial: begun.cardSerial), with: .authentication)
        try await server.completeEnrolment(token: token, .init(signature: Data(signature.rawRepresentation)))
        // Nothing stays open on the card: the next program starts without the management key or the passcode.
        try await card.reset()
        return begun
    }
}
