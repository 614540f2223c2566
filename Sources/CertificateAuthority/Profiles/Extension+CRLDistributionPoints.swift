import SwiftASN1
import X509

/// RFC 5280 4.2.1.13 cRLDistributionPoints with one distribution point naming one URL:
/// `SEQUENCE { SEQUENCE { [0] { [0] { [6] IA5String url } } } }`.
/// swift-certificates has no type for it, so it is written here with swift-asn1.
struct CRLDistributionPoints: CertificateExtensionConvertible {
    static let oid: ASN1ObjectIdentifier = [2, 5, 29, 31]
    let url: String

    func makeCertificateExtension() throws -> Certificate.Extension {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                // distributionPoint [0] DistributionPointName (a CHOICE, so the tag is explicit)
                try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                    // fullName [0] IMPLICIT GeneralNames
                    try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                        // uniformResourceIdentifier [6] IMPLICIT IA5String
                        coder.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 6, tagClass: .contextSpecific)) { bytes in
                            bytes.append(contentsOf: url.utf8)
                        }
                    }
                }
            }
        }
        return Certificate.Extension(oid: Self.oid, critical: false, value: coder.serializedBytes[...])
    }
}

/// RFC 5280 4.2.1.4 certificatePolicies with one policy and no qualifiers.
struct CertificatePolicies: CertificateExtensionConvertible {
    static let oid: ASN1ObjectIdentifier = [2, 5, 29, 32]
    let policy: ASN1ObjectIdentifier

    func makeCertificateExtension() throws -> Certificate.Extension {
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(policy)
            }
        }
        return Certificate.Extension(oid: Self.oid, critical: false, value: coder.serializedBytes[...])
    }
}
