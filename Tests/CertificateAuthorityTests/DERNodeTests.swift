@testable import CertificateAuthority
import SwiftASN1
import Testing

@Suite("DER nodes written around encoded contents")
struct DERNodeTests {
    @Test("The same bytes as swift-asn1's serializer, for short and long lengths of every size", arguments: [0, 1, 127, 128, 200, 255, 256, 1_000, 65_535, 65_536, 70_000])
    func sameAsSerializer(length: Int) throws {
        let content = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Split in three parts, as the OCSP response's are.
        let parts = [Array(content.prefix(length / 3)), Array(content.dropFirst(length / 3).prefix(length / 3)), Array(content.dropFirst(2 * (length / 3)))]
        var serializer = DER.Serializer()
        serializer.appendPrimitiveNode(identifier: .octetString) { $0.append(contentsOf: content) }
        #expect(DERNode.wrap(0x04, parts[0], parts[1], parts[2]) == serializer.serializedBytes)
        // And it reads back as written.
        let node = try DER.parse(DERNode.wrap(0x04, content))
        guard case .primitive(let read) = node.content else { Issue.record("not a primitive node"); return }
        #expect(Array(read) == content)
    }
}
