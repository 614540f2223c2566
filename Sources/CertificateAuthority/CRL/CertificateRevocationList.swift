public import CardDeskCore
import SwiftASN1
public import X509

/// An X.509 v2 CRL (RFC 5280 section 5): signed by an issuing CA, with a CRL number, the CA's key identifier,
/// a next update, and a reason code on each entry. swift-certificates has no CRL type: this one is written on
/// swift-asn1, and reads back what it writes (and what OpenSSL writes).
public struct CertificateRevocationList: Sendable, Hashable {
    public let issuer: DistinguishedName
    public let thisUpdate: Timestamp
    public let nextUpdate: Timestamp
    public let crlNumber: Int64
    public let authorityKeyIdentifier: [UInt8]?
    public let entries: [RevokedCertificate]
    /// The DER of the whole CRL.
    public let derEncoded: [UInt8]
    let tbsBytes: [UInt8]
    let signatureAlgorithm: SignatureAlgorithmIdentifier
    let signature: [UInt8]

    static let crlNumberOID: ASN1ObjectIdentifier = [2, 5, 29, 20]
    static let reasonCodeOID: ASN1ObjectIdentifier = [2, 5, 29, 21]

    /// Builds and signs a CRL for `issuer`.
    static func sign(
        by issuer: IssuingCA, number: Int64, entries: [RevokedCertificate], thisUpdate: Timestamp, nextUpdate: Timestamp
    ) async throws -> CertificateRevocationList {
        let algorithm = try SignatureAlgorithmIdentifier(issuer.signatureAlgorithm)
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1) // v2
            try coder.serialize(algorithm)
            try coder.serialize(issuer.certificate.subject)
            try ASN1Time.serializeTime(thisUpdate, into: &coder)
            try ASN1Time.serializeTime(nextUpdate, into: &coder)
            if !entries.isEmpty {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    for entry in entries {
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            coder.appendUnsignedInteger(entry.serial.bytes)
                            try ASN1Time.serializeTime(entry.revokedAt, into: &coder)
                            // RFC 5280 5.3.1: omit the reason code rather than say "unspecified".
                            if entry.reason != .unspecified {
                                var reason = DER.Serializer()
                                reason.appendEnumerated(UInt8(entry.reason.rawValue))
                                try coder.serializeSequenceOf([
                                    Certificate.Extension(oid: reasonCodeOID, critical: false, value: reason.serializedBytes[...])
                                ])
                            }
                        }
                    }
                }
            }
            try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                var numberDER = DER.Serializer()
                try numberDER.serialize(number)
                try coder.serializeSequenceOf([
                    try AuthorityKeyIdentifier(keyIdentifier: issuer.subjectKeyIdentifier).makeCertificateExtension(),
                    Certificate.Extension(oid: crlNumberOID, critical: false, value: numberDER.serializedBytes[...]),
                ])
            }
        }
        return try CertificateRevocationList(derEncoded: try await issuer.signed(tbs.serializedBytes))
    }

    /// Parses a DER CRL. Throws `.malformedRequest` on anything that is not a well-formed v2 CRL.
    public init(derEncoded bytes: [UInt8]) throws {
        do {
            let root = try DER.parse(bytes)
            var parsed: (tbs: [UInt8], algorithm: SignatureAlgorithmIdentifier, signature: [UInt8])!
            var fields: (DistinguishedName, Timestamp, Timestamp, Int64, [UInt8]?, [RevokedCertificate])!
            try DER.sequence(root, identifier: .sequence) { nodes in
                guard let tbsNode = nodes.next(), let algorithmNode = nodes.next(), let signatureNode = nodes.next() else {
                    throw ASN1Error.invalidASN1Object(reason: "a CRL has three parts")
                }
                fields = try Self.parseTBS(tbsNode)
                parsed = (
                    Array(tbsNode.encodedBytes),
                    try SignatureAlgorithmIdentifier(derEncoded: algorithmNode),
                    Array(try ASN1BitString(derEncoded: signatureNode).bytes)
                )
                guard nodes.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing data") }
            }
            (issuer, thisUpdate, nextUpdate, crlNumber, authorityKeyIdentifier, entries) = fields
            (tbsBytes, signatureAlgorithm, signature) = parsed
            derEncoded = bytes
        } catch let error as CardDeskError {
            throw error
        } catch {
            throw CAError.malformed("CRL", error)
        }
    }

    private static func parseTBS(_ node: ASN1Node) throws -> (DistinguishedName, Timestamp, Timestamp, Int64, [UInt8]?, [RevokedCertificate]) {
        try DER.sequence(node, identifier: .sequence) { nodes in
            guard try Int(derEncoded: &nodes) == 1 else { throw ASN1Error.invalidASN1Object(reason: "not a v2 CRL") }
            guard let algorithmNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no algorithm") }
            _ = try SignatureAlgorithmIdentifier(derEncoded: algorithmNode)
            guard let issuerNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no issuer") }
            let issuer = try DistinguishedName(derEncoded: issuerNode)
            guard let thisNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no thisUpdate") }
            let thisUpdate = try ASN1Time.parseTime(thisNode)
            guard let nextNode = nodes.next(), nextNode.identifier == .utcTime || nextNode.identifier == .generalizedTime else {
                throw ASN1Error.invalidASN1Object(reason: "no nextUpdate")
            }
            let nextUpdate = try ASN1Time.parseTime(nextNode)
            var entries: [RevokedCertificate] = []
            var crlNumber: Int64?
            var aki: [UInt8]?
            while let next = nodes.next() {
                if next.identifier == .sequence {
                    entries = try DERRead.sequenceElements(next).map(parseEntry)
                } else {
                    for ext in try DER.explicitlyTagged(next, tagNumber: 0, tagClass: .contextSpecific, DERRead.extensions) {
                        switch ext.oid {
                        case crlNumberOID: crlNumber = Int64(try Int(derEncoded: ext.value))
                        case .X509ExtensionID.authorityKeyIdentifier: aki = try AuthorityKeyIdentifier(ext).keyIdentifier.map(Array.init)
                        default: if ext.critical { throw ASN1Error.invalidASN1Object(reason: "unknown critical CRL extension \(ext.oid)") }
                        }
                    }
                }
            }
            guard let crlNumber else { throw ASN1Error.invalidASN1Object(reason: "no CRL number") }
            return (issuer, thisUpdate, nextUpdate, crlNumber, aki, entries)
        }
    }

    private static func parseEntry(_ node: ASN1Node) throws -> RevokedCertificate {
        try DER.sequence(node, identifier: .sequence) { nodes in
            guard let serialNode = nodes.next(), let dateNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "short entry") }
            var reason = RevocationReason.unspecified
            if let extensionsNode = nodes.next() {
                for ext in try DERRead.extensions(extensionsNode) where ext.oid == reasonCodeOID {
                    let code = try DERRead.enumerated(try DER.parse(ext.value))
                    guard let known = RevocationReason(rawValue: code) else { throw ASN1Error.invalidASN1Object(reason: "unknown reason \(code)") }
                    reason = known
                }
            }
            return RevokedCertificate(
                serial: SerialNumber(bytes: try DERRead.unsignedInteger(serialNode)),
                revokedAt: try ASN1Time.parseTime(dateNode),
                reason: reason
            )
        }
    }

    /// Whether `key` (the issuing CA's) made this CRL's signature.
    public func isSignatureValid(by key: Certificate.PublicKey) -> Bool {
        guard let algorithm = signatureAlgorithm.signatureAlgorithm else { return false }
        return key.isValidSignature(signature, for: tbsBytes, signatureAlgorithm: algorithm)
    }

    /// The CRL as PEM (`-----BEGIN X509 CRL-----`).
    public var pemEncoded: String {
        PEMDocument(type: "X509 CRL", derBytes: derEncoded).pemString
    }
}
