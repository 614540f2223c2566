import CardDeskAPI
public import CardDeskCore
import Crypto
import Foundation
import SwiftASN1
public import Smartcard
import X509

/// Drives a renewal from the workstation: the card does the key work, the server decides and issues.
///
/// One key pair at a time, in the order the server gives (signing, then authentication): generate the slot's new
/// key on the card (the server answers the card's management-key witness for it), have the CA certify it, write the
/// certificate into the slot, and prove the new key by a signature, after which the server revokes the old
/// certificate. The next pair's key is made only once this one's certificate is written, so at every moment one pair
/// is whole, and it vouches for the card when a renewal resumes; its certificate request then goes with the
/// confirmation (one round trip fewer, when the server takes them together).
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
    /// The session token of the RA renewing this card at their desk (the card in their second reader); nil when the
    /// holder renews their own card.
    let raSessionToken: String?

    public init(server: ServerClient, card: any SmartcardSession, raSessionToken: String? = nil) {
        self.server = server
        self.card = card
        self.raSessionToken = raSessionToken
    }

    /// Renews every certificate on the card. The passcode is checked by the card; it never leaves the workstation.
    public func renew(passcode: String, progress: @Sendable (CertificateProfileKind, Stage) async -> Void) async throws {
        try await card.verifyPIN(passcode)
        let serial = try await card.serial()
        let vouching = try await CardVouching.wholePair(of: card)
        let (view, administered) = try await start(serial: serial, vouching: vouching)
        try await run(view, administered: administered, serial: serial, progress: progress)
    }

    /// Repairs the card at an RA's desk (`raSessionToken` needed): new keys and certificates whatever the renewal
    /// window, and also when a key no longer matches its certificate. The steps are a renewal's.
    public func repair(passcode: String, progress: @Sendable (CertificateProfileKind, Stage) async -> Void) async throws {
        guard let raSessionToken else { throw CardDeskError(.notAuthorised, "Only a Registration Authority can repair a card.") }
        try await card.verifyPIN(passcode)
        let serial = try await card.serial()
        try await run(try await server.startRARepair(sessionToken: raSessionToken, cardSerial: serial), administered: false, serial: serial, progress: progress)
    }

    /// `administered`: the card's management-key witness was answered with the start (the card stays administered).
    private func run(
        _ started: RenewalView, administered: Bool, serial: String, progress: @Sendable (CertificateProfileKind, Stage) async -> Void
    ) async throws {
        var view = started
        if view.done {
            // Renewed already (an earlier run finished on the server but stopped before saying so).
            for item in view.items { await progress(item.profile, .done) }
            return
        }
        guard let token = view.token else { throw CardDeskError(.internalFailure, "The server started no renewal session.") }
        var session = Session(
            client: self, renewal: view.id, token: token, algorithm: view.managementKeyAlgorithm, administered: administered,
            takesNext: view.takesNextWithConfirmation == true
        )
        // Each item as the server's latest answer has it: a confirmation that carried the next key's request comes
        // back with that item issued.
        var index = 0
        while index < view.items.count {
            let item = view.items[index]
            // Cancelled (the card was taken out of the agent's reader): stop between steps; a run later resumes.
            try Task.checkCancellation()
            if item.step < .issued { await progress(item.profile, .pending) }
            if item.step != .done {
                let next = view.items.dropFirst(index + 1).first { $0.step != .done }
                view = try await session.renew(item, next: next, progress: progress)
            }
            await progress(item.profile, .done)
            index += 1
        }
        // A PUK released for an unlock and not yet changed is changed now, while the card is here (the server's last
        // answer says whether one is; an older server's does not, and is asked).
        if view.pukRotationPending != false {
            try await PUKRotation.ifPending(server: server, card: card, serial: serial)
        }
        // Nothing stays open on the card: the management-key authentication ends here.
        try await card.reset()
    }

    /// Starts (or resumes) the renewal with a fresh challenge signed by the card. Sent but unanswered (the server's
    /// instance went away), it is started again with a new challenge: the first one may have been used up, and
    /// starting twice only resumes the same renewal. When the card says its management-key algorithm, its witness goes
    /// with the start and the server's answer administers the card for the whole renewal (`administered`).
    func start(serial: String, vouching: CardSlot) async throws -> (view: RenewalView, administered: Bool) {
        let algorithm = try await card.managementKeyAlgorithm()
        var attempt = 0
        while true {
            let challenge = try await server.challenge()
            let signature = try await card.sign(RenewalStartMessage.make(challenge: challenge, cardSerial: serial), with: vouching)
            // The last card command before the answer: the card waits for it.
            var witness: Data?
            if let algorithm { witness = Data(try await card.administrationWitness(algorithm: algorithm)) }
            let body = RenewalAPI.Start(cardSerial: serial, challenge: challenge, signature: Data(signature.rawRepresentation), witness: witness)
            do {
                let view = if let raSessionToken {
                    try await server.startRARenewal(sessionToken: raSessionToken, body)
                } else {
                    try await server.startRenewal(body)
                }
                guard let algorithm, let answer = view.administration else { return (view, false) }
                _ = try await card.completeAdministration(algorithm: algorithm, witness: Array(answer.witness), challenge: Array(answer.challenge))
                return (view, true)
            } catch let error as CardDeskError where error.code == .serverUnreachable && attempt < ServerClient.retryDelays.count {
                try await Task.sleep(for: ServerClient.retryDelays[attempt])
                attempt += 1
            }
        }
    }

    /// One renewal's steps with its token.
    struct Session {
        let client: RenewalClient
        let renewal: String
        let token: String
        let algorithm: UInt8?
        /// The card's management key is authenticated in this card session (it stays so until the card is reset).
        var administered: Bool
        /// The server takes the next key's certificate request with a confirmation.
        let takesNext: Bool
        var card: any SmartcardSession { client.card }
        var server: ServerClient { client.server }

        /// Renews `item`'s pair. `next`: the item after it still to renew, whose key request may go with this one's
        /// confirmation.
        mutating func renew(
            _ item: RenewalView.Item, next: RenewalView.Item?, progress: @Sendable (CertificateProfileKind, Stage) async -> Void
        ) async throws -> RenewalView {
            let profile = item.profile
            let slot = CardSlot.main(for: profile)
            let issued: Certificate? = try item.newCertificate.map { try Certificate(derEncoded: Array($0)) }

            if let issued, let der = item.newCertificate {
                // Already written (the confirmation was what got lost)?
                if try await card.certificate(in: slot) == issued {
                    return try await confirm(profile, certificate: issued, next: next, progress: progress)
                }
                // Issued for the key the slot holds now: write it.
                if try await card.holdsKey(of: issued, in: slot) {
                    await progress(profile, .writing)
                    try await administer(profile)
                    try await card.writeCertificate(Array(der), into: slot)
                    return try await confirm(profile, certificate: issued, next: next, progress: progress)
                }
            }
            // A key the server never saw (or none yet): the slot gets a new one.
            let request = try await newKey(profile, progress: progress)
            let answer = try await server.submit(renewal: renewal, token: token, request)
            let certificate = try Certificate(derEncoded: Array(answer.certificate))
            await progress(profile, .writing)
            // Still authenticated with the management key in this card session.
            try await card.writeCertificate(Array(answer.certificate), into: slot)
            return try await confirm(profile, certificate: certificate, next: next, progress: progress)
        }

        /// A new key in `profile`'s slot, generated on the card, and its certificate request (with the card's
        /// attestation of the key, when it makes one).
        mutating func newKey(_ profile: CertificateProfileKind, progress: @Sendable (CertificateProfileKind, Stage) async -> Void) async throws -> RenewalAPI.Submit {
            let slot = CardSlot.main(for: profile)
            try Task.checkCancellation()
            await progress(profile, .generatingKey)
            try await administer(profile)
            // The card keeps its key type (the issuing RA chose it): the type of the certificate it holds.
            var current = try await card.certificate(in: slot)
            if current == nil { current = try await card.certificate(in: slot == .authentication ? .signing : .authentication) }
            let algorithm: CardKeyAlgorithm = current.flatMap { P256.Signing.PublicKey($0.publicKey) } != nil ? .p256 : .rsa2048
            let publicKey = try await card.generateKeyPair(in: slot, algorithm: algorithm)
            await progress(profile, .issuing)
            let csr = try await CardPrivateKey(session: card, slot: slot, publicKey: publicKey).signingRequestDER(commonName: profile.rawValue)
            let attestation = try await card.attestation(of: slot)
            return .init(profile: profile, csr: Data(csr), attestation: attestation.map { Data($0.certificate) }, attestationIssuer: attestation.map { Data($0.issuer) })
        }

        /// Management-key authentication, once per card session: the card's witness goes to the server (naming the
        /// slot whose turn it is) and back.
        mutating func administer(_ profile: CertificateProfileKind) async throws {
            if administered { return }
            guard let raw = algorithm, let algorithm = ManagementKey.Algorithm(rawValue: raw) else {
                throw CardDeskError(.unsupportedCard, "The server did not say how to administer this card.")
            }
            let server = server, renewal = renewal, token = token
            _ = try await card.authenticateAdministration(algorithm: algorithm) { witness in
                let answer = try await server.administer(renewal: renewal, token: token, .init(profile: profile, witness: Data(witness)))
                return (Array(answer.witness), Array(answer.challenge))
            }
            administered = true
        }

        /// Proves the new key of `profile` (its certificate now written). With `next` not yet issued (and a server that
        /// takes it), the next pair's new key is made now and its request goes with the confirmation: this pair is
        /// whole on the card from here on, so the card can still vouch for itself if the run stops in between.
        mutating func confirm(
            _ profile: CertificateProfileKind, certificate: Certificate, next: RenewalView.Item?,
            progress: @Sendable (CertificateProfileKind, Stage) async -> Void
        ) async throws -> RenewalView {
            let slot = CardSlot.main(for: profile)
            let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
            let message = RenewalConfirmationMessage.make(renewalID: renewal, profile: profile, serial: serial)
            let signature = try await card.sign(message, with: slot)
            var request: RenewalAPI.Submit?
            if takesNext, let next, next.step < .issued {
                await progress(next.profile, .pending)
                request = try await newKey(next.profile, progress: progress)
            }
            return try await server.confirm(renewal: renewal, token: token, .init(profile: profile, signature: Data(signature.rawRepresentation), next: request))
        }
    }
}

/// Which of the card's key pairs may vouch for it now: the authentication pair, unless a renewal stopped while
/// replacing its key (its certificate then no longer matches), in which case the signing pair.
enum CardVouching {
    static func wholePair(of card: any SmartcardSession) async throws -> CardSlot {
        for slot in [CardSlot.authentication, .signing] {
            if let certificate = try await card.certificate(in: slot), try await card.holdsKey(of: certificate, in: slot) {
                return slot
            }
        }
        throw CardDeskError(.corruptCard, "Neither key on this card matches its certificate, so it cannot prove who it is. Ask your Registration Authority.")
    }
}

/// After an unlock that stopped before the card's PUK was changed: the server releases both PUKs again (the card
/// proves itself with a signature) and the card gets its new PUK.
enum PUKRotation {
    static func ifPending(server: ServerClient, card: any SmartcardSession, serial: String) async throws {
        guard try await server.renewalStatus(cardSerial: serial).pukRotationPending else { return }
        let slot = try await CardVouching.wholePair(of: card)
        let challenge = try await server.pukChallenge()
        let signature = try await card.sign(PUKRotationMessage.make(challenge: challenge, cardSerial: serial), with: slot)
        let release = try await server.rotatePUK(.init(cardSerial: serial, challenge: challenge, signature: Data(signature.rawRepresentation)))
        try await change(card: card, release: release)
        guard let token = release.token else { throw CardDeskError(.internalFailure, "The server gave no token for the PUK change.") }
        try await server.completePUKRotation(cardSerial: serial, token: token)
    }

    /// Gives the card its new PUK. If the card already has it (the change was made but not reported), the old PUK
    /// is refused at the cost of one PUK try, which the successful check with the new one restores.
    static func change(card: any SmartcardSession, release: UnlockAPI.PUKRelease) async throws {
        do {
            try await card.changePUK(current: release.puk, new: release.nextPUK)
        } catch let error as CardDeskError where error.code == .notAuthorised {
            try await card.changePUK(current: release.nextPUK, new: release.nextPUK)
        }
    }
}
