public import CardDeskCore
public import SwiftASN1
public import X509

/// An RFC 6960 OCSPRequest: the certificates asked about and the optional nonce.
/// Request signatures are accepted and ignored (the responder answers anyone).
public struct OCSPRequest: Hashable, Sendable {
    public static let nonceOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 2]
    /// How many certificates one request may ask about.
    public static let maximumCertificates = 32

    public let certIDs: [OCSPCertID]
    /// The nonce extension exactly as sent, to be echoed in the response.
    public let nonce: Certificate.Extension?

    public init(certIDs: [OCSPCertID], nonce: [UInt8]? = nil) throws {
        self.certIDs = certIDs
        self.nonce = try nonce.map { bytes in
            var value = DER.Serializer()
            try value.serialize(ASN1OctetString(contentBytes: bytes[...]))
            return Certificate.Extension(oid: Self.nonceOID, critical: false, value: value.serializedBytes[...])
        }
    }

    /// Parses a DER request. Anything malformed throws `.malformedRequest`.
    public init(derEncoded bytes: [UInt8]) throws(CardDeskError) {
        do {
            let root = try DER.parse(bytes)
            (certIDs, nonce) = try DER.sequence(root, identifier: .sequence) { nodes in
                guard let tbsNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no tbsRequest") }
                // optionalSignature [0] may follow; it is not checked.
                _ = nodes.next()
                guard nodes.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing data in OCSPRequest") }
                return try DER.sequence(tbsNode, identifier: .sequence) { nodes in
                    _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                    _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) { $0 }
                    guard let listNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no requestList") }
                    let requests = try DERRead.sequenceElements(listNode)
                    let certIDs = try requests.map { request in
                        try DER.sequence(request, identifier: .sequence) { nodes in
                            guard let certIDNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no reqCert") }
                            return try OCSPCertID(derEncoded: certIDNode)
                        }
                    }
                    let extensions = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific, DERRead.extensions) ?? []
                    guard nodes.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing data in tbsRequest") }
                    return (certIDs, extensions.first { $0.oid == Self.nonceOID })
                }
            }
        } catch {
            throw CAError.malformed("OCSP request", error)
        }
        guard !certIDs.isEmpty, certIDs.count <= Self.maximumCertificates else {
            throw CardDeskError(.malformedRequest, "An OCSP request must ask about 1 to \(Self.maximumCertificates) certificates (this one asks about \(certIDs.count)).")
        }
        if let nonce, nonce.value.count > 66 {
            throw CardDeskError(.malformedRequest, "The OCSP nonce is too long (RFC 8954 allows at most 32 bytes).")
        }
    }

    /// DER, as a client sends it.
    public var derEncoded: [UInt8] {
        get throws {
            var coder = DER.Serializer()
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    coder.appendConstructedNode(identifier: .sequence) { coder in
                        for certID in certIDs {
                            coder.appendConstructedNode(identifier: .sequence) { $0.serializeRawBytes(certID.encoded) }
                        }
                    }
                    if let nonce {
                        try coder.serialize(explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific) { coder in
                            try coder.serializeSequenceOf([nonce])
                        }
                    }
                }
            }
            return coder.serializedBytes
        }
    }
}
