public import CardDeskAPI
public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
import Crypto
import Foundation
public import Smartcard
import X509

/// Enrolling a real (or virtual) blank PIV card at a workstation, until the RA console exists.
///
/// 1. An operator (RA) makes a single-use token for one user: `carddesk-server card enrol-token --user ID` (1 hour).
/// 2. `begin`: the workstation presents it with a blank or factory-default card in the reader; the server chooses the
///    card's identity (GUID, serial), its own management key and PUK (kept sealed, sent once to be set on the card),
///    and records the card as `enrolling`. Presenting the token again returns the same card: an interrupted
///    enrolment resumes.
/// 3. `submit`, for each profile: a CSR signed by a key just generated on the card; the CA certifies it for the
///    token's user (a second CSR for another key replaces, and revokes, the first).
/// 4. `complete`: the card signs with its new authentication key; it becomes active and the token is spent.
/// The holder's passcode is set on the card at the workstation and never sent.
public struct CardEnrolment: Sendable {
    let authority: CertificateAuthority
    let store: any EnrolmentStore & CardRegistry & RenewalStore & UserDirectory
    let masterKey: MasterKey
    let clock: any WallClock
    let attestation: AttestationPolicy
    public static let tokenLifetime: Int64 = 3600

    public init(
        authority: CertificateAuthority, store: any EnrolmentStore & CardRegistry & RenewalStore & UserDirectory, masterKey: MasterKey, clock: any WallClock,
        attestation: AttestationPolicy
    ) {
        self.attestation = attestation
        self.authority = authority
        self.store = store
        self.masterKey = masterKey
        self.clock = clock
    }

    /// A token to enrol one card for `userID` (the operator hands it to the person at the workstation).
    public func issueToken(userID: UserID, keyAlgorithm: CardKeyAlgorithm, validityDays: Int?, actor: String) async throws -> (token: String, expiresAt: Timestamp) {
        guard let user = try await store.user(id: userID) else {
            throw CardDeskError(.unknownUser, "No user with ID \(userID) is registered: add them first (carddesk-server user add).")
        }
        let token = CardChallenges.randomToken()
        let now = clock.now()
        let record = EnrolmentRecord(
            id: SecureRandom.uuid(), tokenHash: CardChallenges.hash(token), userID: user.id, keyAlgorithm: keyAlgorithm.rawValue,
            validityDays: validityDays, cardSerial: nil, status: .open, createdAt: now, expiresAt: now.adding(seconds: Self.tokenLifetime)
        )
        try await store.addEnrolment(record, audit: AuditEvent(
            action: .cardEnrol, actor: actor, subject: "user:\(user.id)", details: "enrolment=\(record.id) token issued (\(keyAlgorithm.rawValue))", time: now
        ))
        return (token, record.expiresAt)
    }

    /// Starts (or resumes) the enrolment of the token's card.
    public func begin(token: String) async throws -> EnrolmentAPI.Begun {
        var enrolment = try await open(token)
        if enrolment.cardSerial == nil {
            let card = try CardAdministration.newCard(
                userID: enrolment.userID, keyAlgorithm: enrolment.keyAlgorithm, status: .enrolling, masterKey: masterKey, now: clock.now()
            ).record
            let serial = card.serial
            _ = try await store.attachCard(card, toEnrolment: enrolment.id, audit: AuditEvent(
                action: .cardEnrol, actor: "enrolment:\(enrolment.id)", subject: "user:\(enrolment.userID)", details: "enrolment=\(enrolment.id) card \(serial) begun", time: clock.now()
            ))
            enrolment = try await open(token)
        }
        guard let serial = enrolment.cardSerial, let card = try await store.card(serial: serial), card.status == .enrolling else {
            throw CardDeskError(.internalFailure, "The card of this enrolment was not stored.")
        }
        let key = try CardAdministration.managementKey(of: card, masterKey: masterKey)
        guard let guid = PIVCardSession.guid(serial: serial) else {
            throw CardDeskError(.internalFailure, "The card of this enrolment has a serial CardDesk did not make.")
        }
        return EnrolmentAPI.Begun(
            enrolmentID: enrolment.id, cardSerial: serial, userID: enrolment.userID.rawValue, guid: Data(guid),
            managementKeyAlgorithm: key.algorithm.rawValue, managementKey: Data(key.bytes),
            puk: try CardAdministration.openPUK(card.pukSealed, serial: serial, masterKey: masterKey), keyAlgorithm: card.keyAlgorithm
        )
    }

    /// The card cannot change its management key: it keeps the factory one, which the server then keeps (sealed).
    public func keepFactoryManagementKey(token: String) async throws {
        let (enrolment, card) = try await enrolling(token)
        try await store.replaceManagementKey(
            serial: card.serial, sealed: try CardAdministration.seal(.factoryDefault, serial: card.serial, masterKey: masterKey),
            audit: AuditEvent(action: .cardEnrol, actor: "enrolment:\(enrolment.id)", subject: "card:\(card.serial)",
                              details: "enrolment=\(enrolment.id) the card cannot change its management key: the factory key is kept", time: clock.now())
        )
    }

    /// Issues the certificate of `profile` for a CSR signed by the card's new key.
    public func submit(
        token: String, profile: CertificateProfileKind, csr csrDER: [UInt8], attestation: [UInt8]? = nil, attestationIssuer: [UInt8]? = nil
    ) async throws -> [UInt8] {
        let (enrolment, card) = try await enrolling(token)
        let csr = try CertificateRequestCheck.parse(csrDER)
        do {
            try self.attestation.check(csr: csr, attestation: attestation, issuer: attestationIssuer, now: clock.now())
        } catch let error as CardDeskError {
            _ = try? await store.appendAudit(AuditEvent(
                action: .cardEnrol, actor: "enrolment:\(enrolment.id)", subject: "user:\(enrolment.userID)", outcome: .failure,
                details: "enrolment=\(enrolment.id) \(profile): key attestation refused", time: clock.now()
            ))
            throw error
        }
        guard (CardKeyAlgorithm(rawValue: card.keyAlgorithm) == .p256) == (P256.Signing.PublicKey(csr.publicKey) != nil) else {
            throw CardDeskError(.unsupportedKey, "This card is enrolled for \(card.keyAlgorithm) keys; the request is for another kind.")
        }
        let actor = "enrolment:\(enrolment.id)"
        for record in try await store.goodCertificates(cardSerial: card.serial) where record.profile == profile {
            if try Certificate(derEncoded: record.der).publicKey == csr.publicKey { return record.der }
            // Issued for a key the card no longer holds (the enrolment was run again): it must not stay valid.
            _ = try await authority.revoke(serial: record.serial, reason: .cessationOfOperation, actor: actor, current: record)
        }
        let prepared = try await authority.prepare(userID: enrolment.userID, profile: profile, csr: csr, validityDays: enrolment.validityDays)
        return try await authority.issue(prepared, actor: actor, cardSerial: card.serial).derEncoded()
    }

    /// The card proves its new authentication key; it becomes active.
    public func complete(token: String, signature: [UInt8]) async throws -> CardRecord {
        let (enrolment, card) = try await enrolling(token)
        let good = try await store.goodCertificates(cardSerial: card.serial)
        let candidates = good.filter { $0.profile == .authentication }
        guard try candidates.contains(where: { try CardChallenges.verify(signature, over: EnrolmentMessage.make(enrolmentID: enrolment.id, cardSerial: card.serial), by: $0) }) else {
            throw CardDeskError(.authenticationFailed, "The card did not prove it holds its new authentication key. Run the enrolment again.")
        }
        guard Set(good.map(\.profile)) == Set(CertificateProfileKind.allCases) else {
            throw CardDeskError(.invalidInput, "The card does not have both certificates yet. Run the enrolment again.")
        }
        let completed = try await store.completeEnrolment(id: enrolment.id, cardSerial: card.serial, audit: AuditEvent(
            action: .cardEnrol, actor: "enrolment:\(enrolment.id)", subject: "user:\(enrolment.userID)", details: "enrolment=\(enrolment.id) card \(card.serial) enrolled", time: clock.now()
        ))
        // Not completed now: completed already (a repeated request), or ended by the sweep as its token expired.
        if !completed, try await store.enrolment(tokenHash: enrolment.tokenHash)?.status != .done {
            throw CardDeskError(.codeExpired, "This enrolment token expired before the card was enrolled: ask your Registration Authority for a new one.")
        }
        var active = card
        active.status = .active
        return active
    }

    /// How long past its token's expiry an unfinished enrolment is left alone (a workstation may be mid-request).
    public static let abandonedAfter: Int64 = 600

    /// Ends the enrolments whose token expired with the card not enrolled: the enrolment is marked expired, the card
    /// cancelled, and every certificate issued for it revoked (cessation of operation), so that no valid certificate
    /// is left for a card that never became usable. Run again, it finishes what a stopped run left. Returns how many
    /// enrolments it ended.
    @discardableResult
    public func sweepAbandoned() async throws -> Int {
        let now = clock.now()
        var ended = 0
        for enrolment in try await store.abandonedEnrolments(before: now.adding(seconds: -Self.abandonedAfter), limit: 100) {
            guard let serial = enrolment.cardSerial else { continue }
            if enrolment.status == .open {
                // Claimed first: a completion racing with the sweep either won already or cannot win now.
                let claimed = try await store.abandonEnrolment(id: enrolment.id, cardSerial: serial, audit: AuditEvent(
                    action: .cardEnrol, actor: "system", subject: "card:\(serial)", outcome: .failure,
                    details: "enrolment=\(enrolment.id) token expired before the card was enrolled: card cancelled, its certificates revoked", time: now
                ))
                guard claimed else { continue }
                ended += 1
            }
            for record in try await store.goodCertificates(cardSerial: serial) {
                _ = try await authority.revoke(serial: record.serial, reason: .cessationOfOperation, actor: "system", current: record)
            }
        }
        return ended
    }

    private func open(_ token: String) async throws -> EnrolmentRecord {
        let refused = CardDeskError(.authenticationFailed, "This enrolment token is not valid: it was mistyped, already used, or more than an hour old. Ask your Registration Authority for a new one.")
        guard let token = try? Identifiers.token(token), let enrolment = try await store.enrolment(tokenHash: CardChallenges.hash(token)) else { throw refused }
        guard enrolment.status == .open, enrolment.expiresAt > clock.now() else { throw refused }
        return enrolment
    }

    private func enrolling(_ token: String) async throws -> (EnrolmentRecord, CardRecord) {
        let enrolment = try await open(token)
        guard let serial = enrolment.cardSerial, let card = try await store.card(serial: serial), card.status == .enrolling else {
            throw CardDeskError(.invalidInput, "This enrolment has not begun: start it again with the token.")
        }
        return (enrolment, card)
    }
}
