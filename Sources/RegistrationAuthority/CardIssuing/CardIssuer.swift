public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
public import Foundation
public import Smartcard
public import VirtualSmartcard
public import X509

/// Issues a virtual card: a factory-fresh virtual PIV card enrolled with its passcode, a PUK and a management key
/// (both kept by the server, sealed, different for every card), a key pair generated on the card for each profile,
/// and both certificates written. The RA console will call the same code.
public struct CardIssuer: Sendable {
    let authority: CertificateAuthority
    let users: any UserDirectory
    let registry: any CardRegistry
    let masterKey: MasterKey
    let clock: any WallClock
    /// The maker whose attestation key each virtual card gets.
    let manufacturer: VirtualCardManufacturer?

    public init(
        authority: CertificateAuthority, users: any UserDirectory, registry: any CardRegistry, masterKey: MasterKey, clock: any WallClock,
        manufacturer: VirtualCardManufacturer?
    ) {
        self.manufacturer = manufacturer
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
        let now = clock.now()
        let (record, guid, managementKey, puk) = try CardAdministration.newCard(
            userID: user.id, keyAlgorithm: keyAlgorithm.rawValue, status: .active, masterKey: masterKey, now: now
        )
        let serial = record.serial
        try await registry.addCard(
            record, audit: AuditEvent(action: .raAction, actor: actor, subject: "user:\(user.id)", details: "card issue \(serial) (\(keyAlgorithm.rawValue))", time: now)
        )
        // Built under a scratch name and renamed into place when complete.
        let scratch = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).\(serial).partial")
        var issued: [Certificate] = []
        do {
            // A factory-fresh virtual PIV card, enrolled as a real one is: its own management key, PUK, passcode and
            // identity, then a key pair generated on the card and a certificate for each profile.
            let session = PIVCardSession(transport: try VirtualPIVCard.blank(file: scratch, manufacturer: manufacturer))
            let piv = session.client
            try await piv.select()
            try await piv.authenticate(with: .factoryDefault)
            try await piv.setManagementKey(managementKey)
            try await piv.writeObject(PIV.Object.chuid, PIV.chuid(guid: guid))
            try await piv.changePUK(current: PIV.factoryPUK, new: puk)
            try await piv.changePIN(current: PIV.factoryPIN, new: passcode)
            try await session.verifyPIN(passcode)
            var certificates: [CertificateProfileKind: Certificate] = [:]
            for profile in CertificateProfileKind.allCases {
                let slot = CardSlot.main(for: profile)
                let publicKey = try await session.generateKeyPair(in: slot, algorithm: keyAlgorithm)
                let csr = try await CardPrivateKey(session: session, slot: slot, publicKey: publicKey).signingRequest(commonName: serial)
                let prepared = try await authority.prepare(userID: user.id, profile: profile, csr: csr, validityDays: validityDays)
                let certificate = try await authority.issue(prepared, actor: actor, cardSerial: serial)
                issued.append(certificate)
                try await session.writeCertificate(try certificate.derEncoded(), into: slot)
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
