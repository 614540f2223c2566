public import CardDeskCore
import Crypto
import _CryptoExtras
import SwiftASN1
public import X509

/// One issuing CA: its certificate, its key (only as `Certificate.PrivateKey`, so it may live in an HSM), and the
/// values OCSP needs to recognise requests about it.
public struct IssuingCA: Sendable {
    public let profile: CertificateProfileKind
    public let certificate: Certificate
    let key: Certificate.PrivateKey
    /// The algorithm this CA signs with, from its key type.
    let signatureAlgorithm: Certificate.SignatureAlgorithm
    let subjectKeyIdentifier: ArraySlice<UInt8>
    /// RFC 6960 CertID hashes of this CA's name (DER of its subject) and key (the subjectPublicKey BIT STRING).
    let nameHashes: [CertIDHashAlgorithm: [UInt8]]
    let keyHashes: [CertIDHashAlgorithm: [UInt8]]
    /// The key's SHA-1 hash, for the OCSP ResponderID byKey.
    var keySHA1: [UInt8] { keyHashes[.sha1]! }

    init(profile: CertificateProfileKind, certificate: Certificate, key: Certificate.PrivateKey) throws {
        self.profile = profile
        self.certificate = certificate
        self.key = key
        self.signatureAlgorithm = try Self.signatureAlgorithm(for: key.publicKey)
        let nameDER = try derBytes(certificate.subject)
        let keyBits = try SubjectPublicKeyBits.bits(of: certificate.publicKey)
        self.nameHashes = [.sha1: Array(Insecure.SHA1.hash(data: nameDER)), .sha256: Array(SHA256.hash(data: nameDER))]
        self.keyHashes = [.sha1: Array(Insecure.SHA1.hash(data: keyBits)), .sha256: Array(SHA256.hash(data: keyBits))]
        if let ski = try certificate.extensions.subjectKeyIdentifier {
            self.subjectKeyIdentifier = ski.keyIdentifier
        } else {
            self.subjectKeyIdentifier = ArraySlice(Insecure.SHA1.hash(data: keyBits))
        }
    }

    /// A raw signature over `bytes` with this CA's key (DER ECDSA-Sig-Value or RSA bytes), for the benchmark's
    /// raw signing rate. Certificates are signed only through `CertificateAuthority.issue`.
    public func signature(over bytes: [UInt8]) async throws -> [UInt8] {
        try await key.signAsynchronously(bytes: bytes, signatureAlgorithm: signatureAlgorithm).rawRepresentation
    }

    /// Signs a to-be-signed part (of a CRL, or of a basic OCSP response) and returns the signed structure
    /// both share: `SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING }`.
    func signed(_ tbs: [UInt8]) async throws -> [UInt8] {
        let algorithm = try SignatureAlgorithmIdentifier(signatureAlgorithm)
        let signature = ASN1BitString(bytes: ArraySlice(try await signature(over: tbs)))
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(tbs)
            try coder.serialize(algorithm)
            try coder.serialize(signature)
        }
        return coder.serializedBytes
    }
}

extension IssuingCA {
    static func signatureAlgorithm(for key: Certificate.PublicKey) throws -> Certificate.SignatureAlgorithm {
        if P256.Signing.PublicKey(key) != nil { return .ecdsaWithSHA256 }
        if P384.Signing.PublicKey(key) != nil { return .ecdsaWithSHA384 }
        if _RSA.Signing.PublicKey(key) != nil { return .sha256WithRSAEncryption }
        throw CAError.unsupportedAlgorithm("for a \(key) CA key")
    }
}

enum SubjectPublicKeyBits {
    /// The contents of the subjectPublicKey BIT STRING (what RFC 6960 CertIDs and key identifiers hash).
    /// swift-certificates' `subjectPublicKeyInfoBytes` is exactly that, despite its name.
    static func bits(of key: Certificate.PublicKey) throws -> [UInt8] {
        Array(key.subjectPublicKeyInfoBytes)
    }
}
