public import CardDeskCore
public import CardDeskStore
import Crypto
public import Foundation
import SwiftASN1
public import X509

/// Who signs an OCSP response: a key, the hash that names it in the response (ResponderID byKey), and the
/// responder certificate that goes with the response so a client can check that the issuing CA authorised it.
struct OCSPSigner: Sendable {
    let key: Certificate.PrivateKey
    let keySHA1: [UInt8]
    let signatureAlgorithm: Certificate.SignatureAlgorithm
    let certificate: Certificate
    /// The responder certificate's end; responses never outlive it.
    let notAfter: Timestamp
    /// The parts of every response that never change, encoded once: the signature algorithm, and `certs`
    /// with the responder certificate (encoding the certificate again for every answer was 3 % of a renewal).
    let algorithmDER: [UInt8]
    let certsDER: [UInt8]

    init(key: Certificate.PrivateKey, keySHA1: [UInt8], signatureAlgorithm: Certificate.SignatureAlgorithm, certificate: Certificate, notAfter: Timestamp) throws {
        self.key = key
        self.keySHA1 = keySHA1
        self.signatureAlgorithm = signatureAlgorithm
        self.certificate = certificate
        self.notAfter = notAfter
        var algorithm = DER.Serializer()
        try algorithm.serialize(try SignatureAlgorithmIdentifier(signatureAlgorithm))
        algorithmDER = algorithm.serializedBytes
        var certs = DER.Serializer()
        try certs.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
            try coder.serializeSequenceOf([certificate])
        }
        certsDER = certs.serializedBytes
    }

    /// `BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate }`
    func signed(_ tbs: [UInt8]) async throws -> [UInt8] {
        let signature = try await key.signAsynchronously(bytes: tbs, signatureAlgorithm: signatureAlgorithm)
        // BIT STRING with no unused bits.
        let bits = DERNode.wrap(0x03, [0], Array(signature.rawRepresentation))
        return DERNode.wrap(0x30, tbs, algorithmDER, bits, certsDER)
    }
}

/// The delegated OCSP responders (RFC 6960 §4.2.2.2): each issuing CA certifies a short-lived responder key, held
/// in memory only, that signs the OCSP answers; the issuing CA's key (in the HSM) signs certificates and CRLs only,
/// and one responder certificate every `lifetime`. A responder is certified when first needed and replaced once
/// half its life has passed; while the HSM is away, a responder that is still valid keeps answering. Each
/// responder certificate is recorded in the audit log.
public actor DelegatedOCSPResponders {
    let hierarchy: CAHierarchy
    let clock: any WallClock
    /// How long a responder certificate is valid.
    public let lifetimeSeconds: Int64
    let audit: (any AuditLogWriter)?

    private var current: [CertificateProfileKind: OCSPSigner] = [:]
    private var certifying: [CertificateProfileKind: Task<OCSPSigner, any Error>] = [:]

    /// The OID of `id-pkix-ocsp-nocheck`: clients need not check the responder certificate's own revocation.
    static let noCheckOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5]

    /// - Parameter lifetimeSeconds: at least twice the OCSP answers' validity, so that an answer never outlives the
    ///   certificate of the responder that signed it.
    public init(hierarchy: CAHierarchy, clock: any WallClock, lifetimeSeconds: Int64 = 2 * 86_400, audit: (any AuditLogWriter)?) {
        self.hierarchy = hierarchy
        self.clock = clock
        self.lifetimeSeconds = lifetimeSeconds
        self.audit = audit
    }

    /// The responder for `issuer`, certified or replaced first when needed.
    func signer(for issuer: IssuingCA) async throws -> OCSPSigner {
        let now = clock.now()
        let profile = issuer.profile
        if let signer = current[profile], signer.notAfter > now.adding(seconds: lifetimeSeconds / 2) { return signer }
        if let running = certifying[profile] { return try await running.value }
        let lifetime = lifetimeSeconds
        let task = Task { try await Self.certify(by: issuer, now: now, lifetimeSeconds: lifetime) }
        certifying[profile] = task
        defer { certifying[profile] = nil }
        do {
            let signer = try await task.value
            current[profile] = signer
            try? await audit?.appendAudit(AuditEvent(
                action: .certificateIssue, actor: "system", subject: "ocsp-responder:\(profile.rawValue)",
                details: "OCSP responder certificate \(Hex.string(signer.certificate.serialNumber.bytes, lowercase: true)) for the \(profile.rawValue) CA, valid until \(signer.notAfter)",
                time: now
            ))
            return signer
        } catch {
            // The HSM is away: a responder that is still valid keeps answering until it is back.
            if let signer = current[profile], signer.notAfter > now.adding(seconds: 60) { return signer }
            throw error
        }
    }

    static func certify(by issuer: IssuingCA, now: Timestamp, lifetimeSeconds: Int64) async throws -> OCSPSigner {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let notBefore = now.date.addingTimeInterval(-300)
        let notAfter = now.adding(seconds: lifetimeSeconds)
        // The issuing CA's name, its common name followed by "OCSP Responder".
        let names = Array(issuer.certificate.subject)
        let commonName = names.flatMap { $0 }.first { $0.type == .RDNAttributeType.commonName }.map { "\($0.value)" } ?? "CardDesk CA"
        let subject = DistinguishedName(
            names.filter { !$0.contains { $0.type == .RDNAttributeType.commonName } }
                + [RelativeDistinguishedName(try RelativeDistinguishedName.Attribute(type: .RDNAttributeType.commonName, utf8String: "\(commonName) OCSP Responder"))]
        )
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: SerialNumberGenerator.randomSerialBytes()),
            publicKey: publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter.date,
            issuer: issuer.certificate.subject,
            subject: subject,
            signatureAlgorithm: issuer.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.ocspSigning])
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: issuer.subjectKeyIdentifier)
                Certificate.Extension(oid: noCheckOID, critical: false, value: [0x05, 0x00])
            },
            issuerPrivateKey: issuer.key
        )
        return try OCSPSigner(
            key: Certificate.PrivateKey(key),
            keySHA1: Array(Insecure.SHA1.hash(data: try SubjectPublicKeyBits.bits(of: publicKey))),
            signatureAlgorithm: .ecdsaWithSHA256,
            certificate: certificate,
            notAfter: notAfter
        )
    }
}
