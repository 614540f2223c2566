public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
import Crypto
public import Foundation
public import Smartcard
import VirtualSmartcard
public import X509

/// Issues a card: a new virtual card with its PIN, a PUK and a management key (both kept by the server, sealed,
/// different for every card), a key pair generated on the card for each profile, and both certificates written.
/// The RA console will call the same code.
public struct CardIssuer: Sendable {
    let authority: CertificateAuthority
    let users: any UserDirectory
    let registry: any CardRegistry
    let masterKey: MasterKey
    let clock: any WallClock

    public init(authority: CertificateAuthority, users: any UserDirectory, registry: any CardRegistry, masterKey: MasterKey, clock: any WallClock) {
        self.authority = authority
        self.users = users
        self.registry = registry
        self.masterKey = masterKey
        self.clock = clock
    }

    public struct IssuedCard: Sendable {
        public let serial: String
        public let file: URL
        public let certificates: [CertificateProfileKind: Certificate]
    }

    /// Creates the card file (only once everything is on it), or leaves nothing usable behind: on failure the card
    /// is cancelled and any certificate already issued is revoked.
    public func issueVirtualCard(
        userID: UserID, file: URL, passcode: String, keyAlgorithm: CardKeyAlgorithm, validityDays: Int?, actor: String
    ) async throws -> IssuedCard {
        guard Passcode.isWellFormed(passcode) else {
            throw CardDeskError(.invalidInput, "A passcode is 6 to 8 digits.")
        }
        guard !FileManager.default.fileExists(atPath: file.path) else {
            throw CardDeskError(.invalidInput, "There is already a card at \(file.path); choose another file.")
        }
        guard let user = try await users.user(id: userID) else {
            throw CardDeskError(.unknownUser, "No user with ID \(userID) is registered: add them first (carddesk-server user add).")
        }
        let serial = "CD" + (0..<8).map { _ in String(format: "%02X", UInt8.random(in: 0...255)) }.joined()
        let managementKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let puk = (0..<8).map { _ in String(Int.random(in: 0...9)) }.joined()
        let now = clock.now()
        try await registry.addCard(
            CardRecord(
                serial: serial, userID: user.id, keyAlgorithm: keyAlgorithm.rawValue,
                managementKeySealed: try masterKey.seal(managementKey, label: "card \(serial) management key"),
                pukSealed: try masterKey.seal(Array(puk.utf8), label: "card \(serial) PUK"),
                createdAt: now
            ),
            audit: AuditEvent(action: .raAction, actor: actor, subject: "user:\(user.id)", details: "card issue \(serial) (\(keyAlgorithm.rawValue))", time: now)
        )
        // Built under a scratch name and renamed into place when complete.
        let scratch = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).\(serial).partial")
        var issued: [Certificate] = []
        do {
            let card = try VirtualCard.create(file: scratch, serial: serial, pin: passcode, puk: puk, managementKey: managementKey)
            try await card.verifyPIN(passcode)
            var certificates: [CertificateProfileKind: Certificate] = [:]
            for profile in CertificateProfileKind.allCases {
                let slot = CardSlot.main(for: profile)
                let generate = AdminOperation.generateKey(slot: slot, algorithm: keyAlgorithm)
                let publicKey = try await card.generateKeyPair(
                    in: slot, algorithm: keyAlgorithm,
                    authorisation: .answer(challenge: try await card.adminChallenge(), operation: generate, managementKey: managementKey)
                )
                let key = CardPrivateKey(session: card, slot: slot, publicKey: publicKey)
                let csr = try await CertificateSigningRequest(
                    version: .v1, subject: try DistinguishedName { CommonName(serial) }, asyncPrivateKey: .init(key),
                    attributes: .init(), signatureAlgorithm: key.defaultSignatureAlgorithm
                )
                let prepared = try await authority.prepare(userID: user.id, profile: profile, csr: csr, validityDays: validityDays)
                let certificate = try await authority.issue(prepared, actor: actor, cardSerial: serial)
                issued.append(certificate)
                let der = try certificate.derEncoded()
                let install = AdminOperation.installCertificate(slot: slot, keyFrom: nil, certificateSHA256: Array(SHA256.hash(data: der)))
                try await card.installCertificate(
                    der, into: slot, keyFrom: nil,
                    authorisation: .answer(challenge: try await card.adminChallenge(), operation: install, managementKey: managementKey)
                )
                certificates[profile] = certificate
            }
            guard rename(scratch.path, file.path) == 0 else {
                throw CardDeskError(.invalidInput, "Cannot create the card file \(file.path): check that its folder is writable.")
            }
            return IssuedCard(serial: serial, file: file, certificates: certificates)
        } catch {
            try? FileManager.default.removeItem(at: scratch)
            for certificate in issued {
                _ = try? await authority.revoke(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), reason: .cessationOfOperation, actor: actor)
            }
            try? await registry.cancelCard(serial: serial, audit: AuditEvent(
                action: .raAction, actor: actor, subject: "user:\(user.id)", outcome: .failure,
                details: "card issue \(serial) failed and was cancelled: \(error)", time: clock.now()
            ))
            throw error
        }
    }
}
