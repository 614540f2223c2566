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
        let nameHash = digest(nameDER)
        let keyHash = digest(keyBits)
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(SignatureAlgorithmIdentifier(oid: hash == .sha1 ? CertIDHashAlgorithm.sha1OID : CertIDHashAlgorithm.sha256OID, hasNullParameters: true))
            try coder.serialize(ASN1OctetString(contentBytes: nameHash[...]))
            try coder.serialize(ASN1OctetString(contentBytes: keyHash[...]))
            coder.appendUnsignedInteger(serial.bytes)
        }
        try self.init(derEncoded: try DER.parse(coder.serializedBytes))
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
