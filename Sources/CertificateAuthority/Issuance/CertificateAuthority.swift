public import CardDeskCore
public import CardDeskStore
import Foundation
import SwiftASN1
public import X509

/// What wants to know of each certificate issued or revoked (the OCSP responder, which signs answers ahead).
public protocol CertificateStatusListener: Sendable {
    /// The OCSP answer about `record` as it is about to be stored, signed before the transaction that stores both
    /// (nil: none now; the first question will sign it).
    func answerAhead(for record: CertificateRecord) async -> AnswerSignedAhead?
    /// Called once the issuance is stored, with the answer stored alongside.
    func certificateIssued(_ record: CertificateRecord, ahead: AnswerSignedAhead?) async
    /// Called before `revoke` returns: whatever the listener held about the certificate must be gone by then.
    func certificateRevoked(_ record: CertificateRecord, ahead: AnswerSignedAhead?) async
}

/// An OCSP answer signed before the change it states is stored.
public struct AnswerSignedAhead: Sendable {
    public let answer: PresignedOCSPAnswer
    /// The listener's mark of the moment it was signed (the responder's memory generation: an answer signed before
    /// something was withdrawn from memory is not held after it).
    let mark: UInt64
}

/// The certificate authority: issues in two steps, as Boulder does (*prepare* checks everything and fixes every
/// field; *issue* signs once and stores before returning), revokes, and publishes CRLs.
public struct CertificateAuthority: Sendable {
    public let hierarchy: CAHierarchy
    public let profiles: [CertificateProfileKind: CertificateProfile]
    public let urls: PKIURLs
    let storage: any CertificateAuthorityStorage
    public let clock: any WallClock
    let crlCache: CRLCache
    /// Told of every issuance and revocation once it is stored (the OCSP responder, which signs answers ahead).
    let listener: (any CertificateStatusListener)?
    /// Each profile's extensions that are the same in all its certificates, made once (see `prepare`).
    let fixedExtensions: [CertificateProfileKind: CertificateProfile.FixedExtensions]

    public init(
        hierarchy: CAHierarchy,
        profiles: [CertificateProfileKind: CertificateProfile],
        urls: PKIURLs,
        storage: any CertificateAuthorityStorage,
        clock: any WallClock = SystemClock(),
        crlValiditySeconds: Int64 = 86_400,
        listener: (any CertificateStatusListener)? = nil
    ) {
        self.listener = listener
        self.hierarchy = hierarchy
        self.profiles = profiles
        self.urls = urls
        self.storage = storage
        self.clock = clock
        self.crlCache = CRLCache(validitySeconds: crlValiditySeconds)
        // A profile whose extensions cannot be made is left out here; `prepare` then makes them, and reports why not.
        self.fixedExtensions = profiles.compactMapValues { profile in
            try? profile.fixedExtensions(issuerKeyIdentifier: hierarchy.issuer(profile.kind).subjectKeyIdentifier, urls: urls)
        }
    }

    /// Everything decided and checked, nothing signed yet.
    public struct PreparedIssuance: Sendable {
        public let user: User
        public let profile: CertificateProfile
        public let publicKey: Certificate.PublicKey
        public let keyDescription: String
        public let subject: DistinguishedName
        /// The subject as the store keeps it.
        let subjectText: String
        public let serial: SerialNumber
        public let notBefore: Timestamp
        public let notAfter: Timestamp
        let extensions: Certificate.Extensions
    }

    /// Checks a request: proof of possession, key type and size, the user's status, the profile.
    /// - Parameter validityDays: overrides the profile's validity (demos and tests of the renewal window).
    public func prepare(
        userID: UserID, profile kind: CertificateProfileKind, csr: CertificateSigningRequest, validityDays: Int? = nil
    ) async throws -> PreparedIssuance {
        try CertificateRequestCheck.checkProofOfPossession(csr)
        let keyDescription = try CertificateRequestCheck.checkKey(csr.publicKey)
        guard let user = try await storage.user(id: userID) else {
            throw CardDeskError(.unknownUser, "No user with ID \(userID) is registered: add them first (carddesk-server user add).")
        }
        guard user.status == .active else {
            throw CardDeskError(.userNotActive, "User \(userID) is \(user.status.rawValue): no certificate can be issued until the Registration Authority reactivates them.")
        }
        guard let profile = profiles[kind] else {
            throw CardDeskError(.configuration, "No \(kind) profile is configured.")
        }
        let days = validityDays ?? profile.validityDays
        guard (1...3660).contains(days) else {
            throw CardDeskError(.invalidInput, "A certificate must be valid for 1 to 3660 days (asked for \(days)).")
        }
        let issuer = hierarchy.issuer(kind)
        let now = clock.now()
        // Backdated a little so that a workstation whose clock runs slow still accepts a brand-new certificate.
        let notBefore = now.adding(seconds: -300)
        let issuerEnd = Timestamp(issuer.certificate.notValidAfter)
        let notAfter = min(now.adding(seconds: Int64(days) * 86_400), issuerEnd)
        let subject = try CertificateProfile.subject(for: user)
        return PreparedIssuance(
            user: user,
            profile: profile,
            publicKey: csr.publicKey,
            keyDescription: keyDescription,
            subject: subject,
            subjectText: CertificateProfile.subjectText(for: user, subject: subject),
            serial: SerialNumber(bytes: SerialNumberGenerator.randomSerialBytes()),
            notBefore: notBefore,
            notAfter: notAfter,
            extensions: try (fixedExtensions[kind] ?? profile.fixedExtensions(issuerKeyIdentifier: issuer.subjectKeyIdentifier, urls: urls))
                .extensions(subjectKey: csr.publicKey)
        )
    }

    /// Signs a prepared certificate and stores it with its audit entry (and its OCSP answer, signed ahead) in one
    /// transaction before returning it. A serial is stored at most once, so a prepared issuance cannot be issued twice.
    /// - Parameters:
    ///   - cardSerial: the card the certificate is for, when it is issued for a card.
    ///   - renewalID: the renewal that asked for it, if any.
    ///   - step: the renewal step to store in the same transaction, made from the certificate's DER once signed.
    public func issue(
        _ prepared: PreparedIssuance, actor: String, cardSerial: String? = nil, renewalID: String? = nil,
        step: (@Sendable (_ der: [UInt8]) throws -> RenewalStepWrite)? = nil
    ) async throws -> Certificate {
        let issuer = hierarchy.issuer(prepared.profile.kind)
        let certificate = try await Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: ArraySlice(prepared.serial.bytes)),
            publicKey: prepared.publicKey,
            notValidBefore: prepared.notBefore.date,
            notValidAfter: prepared.notAfter.date,
            issuer: issuer.certificate.subject,
            subject: prepared.subject,
            signatureAlgorithm: issuer.signatureAlgorithm,
            extensions: prepared.extensions,
            issuerAsyncPrivateKey: issuer.key
        )
        let der = try derBytes(certificate)
        let record = CertificateRecord(
            serial: prepared.serial,
            profile: prepared.profile.kind,
            userID: prepared.user.id,
            subject: prepared.subjectText,
            notBefore: Timestamp(certificate.notValidBefore),
            notAfter: Timestamp(certificate.notValidAfter),
            cardSerial: cardSerial,
            renewalID: renewalID,
            der: der
        )
        let audit = AuditEvent(
            action: .certificateIssue, actor: actor, subject: "user:\(prepared.user.id)",
            details: "profile=\(prepared.profile.kind) serial=\(prepared.serial.hex) key=\(prepared.keyDescription) notAfter=\(record.notAfter)"
                + (cardSerial.map { " card=\($0)" } ?? "") + (renewalID.map { " renewal=\($0)" } ?? ""),
            time: clock.now()
        )
        let ahead = await listener?.answerAhead(for: record)
        try await storage.recordIssuance(record, audit: audit, answer: ahead?.answer, step: try step?(der))
        await listener?.certificateIssued(record, ahead: ahead)
        return certificate
    }

    /// Revokes a certificate (RFC 5280 reason) and records who did it, in one transaction, with the OCSP answer that
    /// says so (signed ahead). `byRenewal`: the renewal revoking it as one of its own steps (it is not cancelled);
    /// `step`: that renewal's step, stored in the same transaction. `current`: the certificate as the caller has just
    /// read it, so it is not read again to sign the answer (the transaction still checks it is good).
    public func revoke(
        serial: SerialNumber, reason: RevocationReason, supersededBy: SerialNumber? = nil, byRenewal: String? = nil, actor: String,
        step: RenewalStepWrite? = nil, current: CertificateRecord? = nil
    ) async throws -> CertificateRecord {
        let now = clock.now()
        let audit = AuditEvent(
            action: .certificateRevoke, actor: actor, subject: "certificate:\(serial.hex)",
            details: "reason=\(reason.name)" + (supersededBy.map { " supersededBy=\($0.hex)" } ?? ""), time: now
        )
        var ahead: AnswerSignedAhead?
        var stored = current?.serial == serial ? current : nil
        if listener != nil, stored == nil { stored = try await storage.certificate(serial: serial) }
        if let listener, var revoked = stored, revoked.status == .good {
            revoked.status = .revoked
            revoked.revokedAt = now
            revoked.revocationReason = reason
            revoked.supersededBy = supersededBy
            ahead = await listener.answerAhead(for: revoked)
        }
        let record = try await storage.revoke(
            serial: serial, reason: reason, at: now, supersededBy: supersededBy, byRenewal: byRenewal, audit: audit, answer: ahead?.answer, step: step
        )
        await crlCache.invalidate(record.profile)
        await listener?.certificateRevoked(record, ahead: ahead)
        return record
    }
}
