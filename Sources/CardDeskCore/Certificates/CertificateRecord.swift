/// What the store keeps about every certificate the CA has issued.
public struct CertificateRecord: Hashable, Sendable {
    public enum Status: String, Hashable, Sendable {
        case good
        case revoked
    }

    public let serial: SerialNumber
    /// Which issuing CA signed it.
    public let profile: CertificateProfileKind
    public let userID: UserID
    /// The subject as text, for people and searches (the DER is the authority).
    public let subject: String
    public let notBefore: Timestamp
    public let notAfter: Timestamp
    public var status: Status
    public var revokedAt: Timestamp?
    public var revocationReason: RevocationReason?
    /// The certificate that replaced this one in a renewal, if any.
    public var supersededBy: SerialNumber?
    /// The card the certificate was written to, when it was issued for a card.
    public var cardSerial: String?
    /// The renewal that issued it, if any.
    public var renewalID: String?
    public let der: [UInt8]

    public init(
        serial: SerialNumber,
        profile: CertificateProfileKind,
        userID: UserID,
        subject: String,
        notBefore: Timestamp,
        notAfter: Timestamp,
        status: Status = .good,
        revokedAt: Timestamp? = nil,
        revocationReason: RevocationReason? = nil,
        supersededBy: SerialNumber? = nil,
        cardSerial: String? = nil,
        renewalID: String? = nil,
        der: [UInt8]
    ) {
        self.serial = serial
        self.profile = profile
        self.userID = userID
        self.subject = subject
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.status = status
        self.revokedAt = revokedAt
        self.revocationReason = revocationReason
        self.supersededBy = supersededBy
        self.cardSerial = cardSerial
        self.renewalID = renewalID
        self.der = der
    }
}

/// An entry of a CRL: which certificate, when, and why.
public struct RevokedCertificate: Hashable, Sendable {
    public let serial: SerialNumber
    public let revokedAt: Timestamp
    public let reason: RevocationReason

    public init(serial: SerialNumber, revokedAt: Timestamp, reason: RevocationReason) {
        self.serial = serial
        self.revokedAt = revokedAt
        self.reason = reason
    }
}
