public import CardDeskCore
import SwiftASN1
public import X509

/// An RFC 6960 OCSPResponse: written by the responder, and read back by tests and clients.
public struct OCSPResponse: Hashable, Sendable {
    public enum Status: UInt8, Hashable, Sendable {
        case successful = 0
        case malformedRequest = 1
        case internalError = 2
        case tryLater = 3
        case sigRequired = 5
        case unauthorized = 6
    }

    public enum CertStatus: Hashable, Sendable {
        case good
        case revoked(at: Timestamp, reason: RevocationReason?)
        case unknown
    }

    public struct SingleResponse: Hashable, Sendable {
        public let certID: OCSPCertID
        public let status: CertStatus
        public let thisUpdate: Timestamp
        public let nextUpdate: Timestamp?
    }

    static let basicResponseOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1]

    public let status: Status
    public let responderKeyHash: [UInt8]?
    public let producedAt: Timestamp?
    public let responses: [SingleResponse]
    /// The nonce extension's value, when the response echoes one.
    public let nonce: Certificate.Extension?
    public let derEncoded: [UInt8]
    /// The certificates sent with the response (a delegated responder's own).
    public let certificates: [Certificate]
    let tbsBytes: [UInt8]
    let signatureAlgorithm: SignatureAlgorithmIdentifier?
    let signature: [UInt8]

    /// An unsuccessful response: just the status, no body (RFC 6960 4.2.1).
    static func failure(_ status: Status) -> [UInt8] {
        var coder = DER.Serializer()
        coder.appendConstructedNode(identifier: .sequence) { $0.appendEnumerated(status.rawValue) }
        return coder.serializedBytes
    }

    /// Signs a successful response with a delegated responder's key, and sends its certificate along.
    static func sign(
        by signer: OCSPSigner, responses: [SingleResponse], producedAt: Timestamp, nonce: Certificate.Extension?
    ) async throws -> [UInt8] {
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific) { coder in
                try coder.serialize(ASN1OctetString(contentBytes: signer.keySHA1[...]))
            }
            try coder.serialize(try ASN1Time.generalizedTime(producedAt))
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                for response in responses {
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        coder.serializeRawBytes(response.certID.encoded)
                        switch response.status {
                        case .good:
                            coder.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { _ in }
                        case .revoked(let time, let reason):
                            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)) { coder in
                                try coder.serialize(try ASN1Time.generalizedTime(time))
                                if let reason {
                                    coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                                        coder.appendEnumerated(UInt8(reason.rawValue))
                                    }
                                }
                            }
                        case .unknown:
                            coder.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)) { _ in }
                        }
                        try coder.serialize(try ASN1Time.generalizedTime(response.thisUpdate))
                        if let nextUpdate = response.nextUpdate {
                            try coder.serialize(try ASN1Time.generalizedTime(nextUpdate), explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
                        }
                    }
                }
            }
            if let nonce {
                try coder.serialize(explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific) { coder in
                    try coder.serializeSequenceOf([nonce])
                }
            }
        }
        let basic = try await signer.signed(tbs.serializedBytes)
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT SEQUENCE { responseType, response OCTET STRING } }
        return DERNode.wrap(0x30, DERNode.wrap(0x0A, [Status.successful.rawValue]), DERNode.wrap(0xA0, DERNode.wrap(0x30, Self.basicResponseOIDDER, DERNode.wrap(0x04, basic))))
    }

    static let basicResponseOIDDER: [UInt8] = try! derBytes(basicResponseOID)

    /// Parses a DER response (ours, or any RFC 6960 responder's).
    public init(derEncoded bytes: [UInt8]) throws(CardDeskError) {
        do {
            let root = try DER.parse(bytes)
            let (status, basicBytes) = try DER.sequence(root, identifier: .sequence) { nodes -> (Status, [UInt8]?) in
                guard let statusNode = nodes.next(), let status = Status(rawValue: UInt8(clamping: try DERRead.enumerated(statusNode))) else {
                    throw ASN1Error.invalidASN1Object(reason: "bad response status")
                }
                let body = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { node in
                    try DER.sequence(node, identifier: .sequence) { nodes -> [UInt8] in
                        guard try ASN1ObjectIdentifier(derEncoded: &nodes) == Self.basicResponseOID, let octets = nodes.next() else {
                            throw ASN1Error.invalidASN1Object(reason: "not a basic OCSP response")
                        }
                        return try DERRead.octetString(octets)
                    }
                }
                return (status, body)
            }
            self.status = status
            self.derEncoded = bytes
            guard let basicBytes else {
                (responderKeyHash, producedAt, responses, nonce, tbsBytes, signatureAlgorithm, signature, certificates) = (nil, nil, [], nil, [], nil, [], [])
                return
            }
            let basic = try DER.parse(basicBytes)
            var tbsNode: ASN1Node!
            (signatureAlgorithm, signature, certificates) = try DER.sequence(basic, identifier: .sequence) { nodes in
                guard let tbs = nodes.next(), let algorithm = nodes.next(), let signature = nodes.next() else {
                    throw ASN1Error.invalidASN1Object(reason: "short BasicOCSPResponse")
                }
                tbsNode = tbs
                let certificates = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { node in
                    try DER.sequence(of: Certificate.self, identifier: .sequence, rootNode: node)
                } ?? []
                return (try SignatureAlgorithmIdentifier(derEncoded: algorithm), Array(try ASN1BitString(derEncoded: signature).bytes), certificates)
            }
            tbsBytes = Array(tbsNode.encodedBytes)
            (responderKeyHash, producedAt, responses, nonce) = try DER.sequence(tbsNode, identifier: .sequence) { nodes in
                _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                var keyHash: [UInt8]?
                if let byKey = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific, DERRead.octetString) {
                    keyHash = byKey
                } else {
                    _ = try DER.explicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) { $0 }
                }
                guard let producedNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no producedAt") }
                let producedAt = try ASN1Time.timestamp(try GeneralizedTime(derEncoded: producedNode))
                guard let listNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no responses") }
                let singles = try DERRead.sequenceElements(listNode).map(Self.parseSingle)
                let extensions = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific, DERRead.extensions) ?? []
                return (keyHash, producedAt, singles, extensions.first { $0.oid == OCSPRequest.nonceOID })
            }
        } catch let error as CardDeskError {
            throw error
        } catch {
            throw CAError.malformed("OCSP response", error)
        }
    }

    private static func parseSingle(_ node: ASN1Node) throws -> SingleResponse {
        try DER.sequence(node, identifier: .sequence) { nodes in
            guard let certIDNode = nodes.next(), let statusNode = nodes.next(), let thisNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "short SingleResponse")
            }
            let status: CertStatus
            switch statusNode.identifier {
            case ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific): status = .good
            case ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific): status = .unknown
            case ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific):
                guard case .constructed(let children) = statusNode.content else { throw ASN1Error.invalidASN1Object(reason: "bad RevokedInfo") }
                var inner = children.makeIterator()
                guard let timeNode = inner.next() else { throw ASN1Error.invalidASN1Object(reason: "no revocationTime") }
                let time = try ASN1Time.timestamp(try GeneralizedTime(derEncoded: timeNode))
                let code = try DER.optionalExplicitlyTagged(&inner, tagNumber: 0, tagClass: .contextSpecific, DERRead.enumerated)
                status = .revoked(at: time, reason: code.flatMap(RevocationReason.init(rawValue:)))
            default:
                throw ASN1Error.unexpectedFieldType(statusNode.identifier)
            }
            let next = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { try GeneralizedTime(derEncoded: $0) }
            return SingleResponse(
                certID: try OCSPCertID(derEncoded: certIDNode),
                status: status,
                thisUpdate: try ASN1Time.timestamp(try GeneralizedTime(derEncoded: thisNode)),
                nextUpdate: try next.map(ASN1Time.timestamp)
            )
        }
    }

    /// Whether `key` signed this response (the responder certificate's key: see `certificates`).
    public func isSignatureValid(by key: Certificate.PublicKey) -> Bool {
        guard let algorithm = signatureAlgorithm?.signatureAlgorithm else { return false }
        return key.isValidSignature(signature, for: tbsBytes, signatureAlgorithm: algorithm)
    }
}
