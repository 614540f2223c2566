import SwiftASN1
import X509

/// The AlgorithmIdentifier that goes beside a signature in a CRL or OCSP response (RFC 5280 4.1.1.2).
/// swift-certificates keeps its own type internal, so CRL and OCSP encode it here.
struct SignatureAlgorithmIdentifier: DERSerializable, Hashable, Sendable {
    let oid: ASN1ObjectIdentifier
    /// RSA algorithms carry an explicit NULL parameter (RFC 4055); ECDSA ones carry none (RFC 5758).
    let hasNullParameters: Bool

    init(_ algorithm: Certificate.SignatureAlgorithm) throws {
        switch algorithm {
        case .ecdsaWithSHA256: self.init(oid: [1, 2, 840, 10045, 4, 3, 2], hasNullParameters: false)
        case .ecdsaWithSHA384: self.init(oid: [1, 2, 840, 10045, 4, 3, 3], hasNullParameters: false)
        case .ecdsaWithSHA512: self.init(oid: [1, 2, 840, 10045, 4, 3, 4], hasNullParameters: false)
        case .sha256WithRSAEncryption: self.init(oid: [1, 2, 840, 113549, 1, 1, 11], hasNullParameters: true)
        case .sha384WithRSAEncryption: self.init(oid: [1, 2, 840, 113549, 1, 1, 12], hasNullParameters: true)
        case .sha512WithRSAEncryption: self.init(oid: [1, 2, 840, 113549, 1, 1, 13], hasNullParameters: true)
        default: throw CAError.unsupportedAlgorithm("\(algorithm)")
        }
    }

    init(oid: ASN1ObjectIdentifier, hasNullParameters: Bool) {
        self.oid = oid
        self.hasNullParameters = hasNullParameters
    }

    init(derEncoded node: ASN1Node) throws {
        (oid, hasNullParameters) = try DER.sequence(node, identifier: .sequence) { nodes in
            let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
            var hasNull = false
            if let parameters = nodes.next() {
                guard parameters.identifier == .null else {
                    throw ASN1Error.invalidASN1Object(reason: "unexpected algorithm parameters")
                }
                hasNull = true
            }
            return (oid, hasNull)
        }
    }

    /// The swift-certificates value for this identifier, if it names a signature algorithm the library verifies.
    var signatureAlgorithm: Certificate.SignatureAlgorithm? {
        let known: [Certificate.SignatureAlgorithm] = [
            .ecdsaWithSHA256, .ecdsaWithSHA384, .ecdsaWithSHA512,
            .sha256WithRSAEncryption, .sha384WithRSAEncryption, .sha512WithRSAEncryption,
        ]
        return known.first { (try? SignatureAlgorithmIdentifier($0)) == self }
    }

    func serialize(into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(oid)
            if hasNullParameters { try coder.serialize(ASN1Null()) }
        }
    }
}

/// Hash algorithms an OCSP CertID may use.
enum CertIDHashAlgorithm: Hashable, Sendable {
    case sha1
    case sha256

    static let sha1OID: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]
    static let sha256OID: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]

    init?(oid: ASN1ObjectIdentifier) {
        switch oid {
        case Self.sha1OID: self = .sha1
        case Self.sha256OID: self = .sha256
        default: return nil
        }
    }
}
