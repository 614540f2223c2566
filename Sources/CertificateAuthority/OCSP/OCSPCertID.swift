public import CardDeskCore
import Crypto
import SwiftASN1
public import X509

/// RFC 6960 CertID: which certificate a question is about, named by hashes of its issuer and its serial.
public struct OCSPCertID: Hashable, Sendable {
    public enum HashAlgorithm: Hashable, Sendable {
        case sha1
        case sha256
    }

    /// nil when the requester used a hash algorithm this responder does not know (the answer is then `unknown`).
    public let hashAlgorithm: HashAlgorithm?
    public let issuerNameHash: [UInt8]
    public let issuerKeyHash: [UInt8]
    public let serial: SerialNumber
    /// The CertID exactly as the requester encoded it; a response repeats it byte for byte.
    let encoded: [UInt8]

    init(derEncoded node: ASN1Node) throws {
        encoded = Array(node.encodedBytes)
        (hashAlgorithm, issuerNameHash, issuerKeyHash, serial) = try DER.sequence(node, identifier: .sequence) { nodes in
            guard let algorithmNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no hash algorithm") }
            let algorithm = try SignatureAlgorithmIdentifier(derEncoded: algorithmNode)
            guard let nameNode = nodes.next(), let keyNode = nodes.next(), let serialNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "short CertID")
            }
            guard nodes.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing data in CertID") }
            let hash: HashAlgorithm? = switch CertIDHashAlgorithm(oid: algorithm.oid) {
            case .sha1: .sha1
            case .sha256: .sha256
            case nil: nil
            }
            return (
                hash,
                try DERRead.octetString(nameNode),
                try DERRead.octetString(keyNode),
                SerialNumber(bytes: try DERRead.unsignedInteger(serialNode))
            )
        }
    }

    /// Builds the CertID a client would send for `serial` issued by `issuer`.
    public init(serial: SerialNumber, issuer: Certificate, hash: HashAlgorithm = .sha1) throws {
        let nameDER = try derBytes(issuer.subject)
        let keyBits = try SubjectPublicKeyBits.bits(of: issuer.publicKey)
        let digest: ([UInt8]) -> [UInt8] = { bytes in
            switch hash {
            case .sha1: Array(Insecure.SHA1.hash(data: bytes))
            case .sha256: Array(SHA256.hash(data: bytes))
            }
        }
        try self.init(serial: serial, hash: hash, nameHash: digest(nameDER), keyHash: digest(keyBits))
    }

    /// The CertID for `serial` issued by one of this CA's issuers, from the hashes it holds (what pre-signing an
    /// answer at every issuance and revocation uses: the issuer's name and key are not encoded and hashed again).
    init(serial: SerialNumber, issuer: IssuingCA, hash: HashAlgorithm = .sha1) throws {
        let internalHash: CertIDHashAlgorithm = hash == .sha1 ? .sha1 : .sha256
        try self.init(serial: serial, hash: hash, nameHash: issuer.nameHashes[internalHash]!, keyHash: issuer.keyHashes[internalHash]!)
    }

    private init(serial: SerialNumber, hash: HashAlgorithm, nameHash: [UInt8], keyHash: [UInt8]) throws {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(SignatureAlgorithmIdentifier(oid: hash == .sha1 ? CertIDHashAlgorithm.sha1OID : CertIDHashAlgorithm.sha256OID, hasNullParameters: true))
            try coder.serialize(ASN1OctetString(contentBytes: nameHash[...]))
            try coder.serialize(ASN1OctetString(contentBytes: keyHash[...]))
            coder.appendUnsignedInteger(serial.bytes)
        }
        encoded = coder.serializedBytes
        hashAlgorithm = hash
        issuerNameHash = nameHash
        issuerKeyHash = keyHash
        self.serial = serial
    }

    /// Whether this CertID names a certificate of `issuer`.
    func matches(_ issuer: IssuingCA) -> Bool {
        let internalHash: CertIDHashAlgorithm
        switch hashAlgorithm {
        case .sha1: internalHash = .sha1
        case .sha256: internalHash = .sha256
        case nil: return false
        }
        return issuer.nameHashes[internalHash] == issuerNameHash && issuer.keyHashes[internalHash] == issuerKeyHash
    }
}
