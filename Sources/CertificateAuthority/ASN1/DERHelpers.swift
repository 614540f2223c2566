import CardDeskCore
public import SwiftASN1
public import X509

extension DER.Serializer {
    /// An INTEGER from an unsigned big-endian magnitude (a serial number), with the sign byte DER needs.
    mutating func appendUnsignedInteger(_ magnitude: [UInt8]) {
        appendPrimitiveNode(identifier: .integer) { bytes in
            var trimmed = magnitude.drop(while: { $0 == 0 })
            if trimmed.isEmpty { trimmed = [0] }
            if trimmed.first! & 0x80 != 0 { bytes.append(0) }
            bytes.append(contentsOf: trimmed)
        }
    }

    mutating func appendEnumerated(_ value: UInt8) {
        precondition(value < 0x80)
        appendPrimitiveNode(identifier: .enumerated) { $0.append(value) }
    }
}

/// A DER node written around contents already encoded: the length is known before anything is written, so the
/// contents are copied once (swift-asn1's serializer writes a node's contents first and then moves them, byte by
/// byte, to make room for a long length: for every enclosing node of a kilobyte-long OCSP response).
enum DERNode {
    static func wrap(_ identifier: UInt8, _ parts: [UInt8]...) -> [UInt8] {
        let length = parts.reduce(0) { $0 + $1.count }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length + 6)
        bytes.append(identifier)
        if length < 0x80 {
            bytes.append(UInt8(length))
        } else {
            let count = (Int.bitWidth - length.leadingZeroBitCount + 7) / 8
            bytes.append(0x80 | UInt8(count))
            for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(UInt8(truncatingIfNeeded: length >> (index * 8))) }
        }
        for part in parts { bytes.append(contentsOf: part) }
        return bytes
    }
}

/// DER bytes of any serialisable value (swift-asn1 keeps its own helper internal).
public func derBytes(_ value: some DERSerializable) throws -> [UInt8] {
    var coder = DER.Serializer()
    try coder.serialize(value)
    return coder.serializedBytes
}

enum DERRead {
    /// The children of a SEQUENCE, unparsed.
    static func sequenceElements(_ node: ASN1Node) throws -> [ASN1Node] {
        try DER.sequence(node, identifier: .sequence) { nodes in
            var elements: [ASN1Node] = []
            while let element = nodes.next() { elements.append(element) }
            return elements
        }
    }

    /// Reads a non-negative INTEGER's magnitude, refusing negative numbers.
    static func unsignedInteger(_ node: ASN1Node) throws -> [UInt8] {
        guard node.identifier == .integer, case .primitive(let content) = node.content, !content.isEmpty else {
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
        guard content.first! & 0x80 == 0 else { throw ASN1Error.invalidASN1Object(reason: "negative serial number") }
        return Array(content.drop(while: { $0 == 0 }))
    }

    static func enumerated(_ node: ASN1Node) throws -> Int {
        guard node.identifier == .enumerated, case .primitive(let content) = node.content, (1...4).contains(content.count) else {
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
        return content.reduce(0) { $0 << 8 | Int($1) }
    }

    static func octetString(_ node: ASN1Node) throws -> [UInt8] {
        Array(try ASN1OctetString(derEncoded: node).bytes)
    }

    /// `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension`.
    static func extensions(_ node: ASN1Node) throws -> [Certificate.Extension] {
        try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: node)
    }
}

extension Certificate {
    /// The certificate's DER, as served at the AIA caIssuers URL.
    public func derEncoded() throws -> [UInt8] {
        try derBytes(self)
    }
}
