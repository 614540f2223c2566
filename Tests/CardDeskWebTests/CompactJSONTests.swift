import CardDeskAPI
import CardDeskCore
import CardDeskWeb
import Foundation
import Testing

/// The API's answers written by `CompactJSON` read exactly as Foundation's `JSONEncoder` output reads.
@Suite("Compact JSON")
struct CompactJSONTests {
    /// Both texts parsed by `JSONSerialization` and written again with sorted keys are the same (key order and
    /// number spelling aside).
    static func sameJSON(_ ours: [UInt8], _ theirs: Data) throws -> Bool {
        func canonical(_ data: Data) throws -> Data {
            try JSONSerialization.data(
                withJSONObject: try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]), options: [.sortedKeys, .fragmentsAllowed]
            )
        }
        return try canonical(Data(ours)) == canonical(theirs)
    }

    static let awkwardStrings = [
        "", "plain", "quote \" backslash \\ slash / ", "line\nfeed\rreturn\ttab", "\u{0}\u{1}\u{1F}\u{7F}", "Zoë 🪪 ĉ ﷽",
        "\u{2028}\u{2029}", "e\u{301}", String(repeating: "x", count: 5_000),
    ]

    @Test("The API's answers read back equal, for awkward strings and every optional present or not")
    func apiAnswers() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        let certificate = Data((0..<700).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        for text in Self.awkwardStrings {
            let status = CardRenewalStatus(
                cardSerial: text, renewalAvailable: text.isEmpty, opensOn: text.isEmpty ? nil : Timestamp(millisecondsSince1970: -5),
                message: text, renewalInProgress: !text.isEmpty, pukRotationPending: true
            )
            let session = SessionView(
                id: text, token: text.isEmpty ? nil : text, userID: "555254600106", name: text, organisation: text, roles: [text, "R8000@RBQ"],
                role: nil, certificates: [.init(profile: .authentication, serial: "0A", notAfter: Timestamp(millisecondsSince1970: Int64.max))],
                renewal: status
            )
            let view = RenewalView(
                id: text, token: nil, done: false, managementKeyAlgorithm: 0x0C,
                items: [.init(profile: .signing, step: .issued, newCertificate: certificate), .init(profile: .authentication, step: .pending, newCertificate: nil)],
                pukRotationPending: nil
            )
            #expect(try decoder.decode(SessionView.self, from: Data(CompactJSON.encode(session))) == session)
            #expect(try decoder.decode(RenewalView.self, from: Data(CompactJSON.encode(view))) == view)
            #expect(try decoder.decode(CardRenewalStatus.self, from: Data(CompactJSON.encode(status))) == status)
            #expect(try Self.sameJSON(CompactJSON.encode(session), encoder.encode(session)))
            #expect(try Self.sameJSON(CompactJSON.encode(view), encoder.encode(view)))
            let error = APIErrorBody(error: .init(code: text, message: text))
            #expect(try Self.sameJSON(CompactJSON.encode(error), encoder.encode(error)))
            let answer = LoginAPI.AgentCheckInAnswer(session: text.isEmpty ? nil : .init(active: true, reason: text))
            #expect(try Self.sameJSON(CompactJSON.encode(answer), encoder.encode(answer)))
            let administration = RenewalAPI.Administration(witness: Data(text.utf8), challenge: Data())
            #expect(try Self.sameJSON(CompactJSON.encode(administration), encoder.encode(administration)))
        }
    }

    struct Everything: Codable, Equatable {
        enum Kind: String, Codable { case one, two }
        struct Inner: Codable, Equatable { let values: [Int?]; let nested: [[String]] }
        let kind: Kind
        let numbers: [Int64]
        let unsigned: UInt64
        let small: Int8
        let decimal: Double
        let float: Float
        let flag: Bool
        let missing: String?
        let table: [String: Int]
        let numbered: [Int: String]
        let inner: Inner
        let blobs: [Data]
    }

    @Test("Numbers, booleans, null, nested containers, dictionaries and arrays of data read back equal")
    func everything() throws {
        let value = Everything(
            kind: .two, numbers: [Int64.min, -1, 0, Int64.max], unsigned: UInt64.max, small: -128, decimal: -0.000001234,
            float: 1.1, flag: true, missing: nil, table: ["a": 1, "\"b\"": 2, "": 3], numbered: [7: "seven", -1: "minus"],
            inner: .init(values: [1, nil, 3], nested: [[], ["x", "y"]]), blobs: [Data(), Data([0, 255])]
        )
        let ours = try CompactJSON.encode(value)
        #expect(try JSONDecoder().decode(Everything.self, from: Data(ours)) == value)
        #expect(try Self.sameJSON(ours, JSONEncoder().encode(value)))
        // A bare string, number and array are JSON too.
        #expect(try CompactJSON.encode("a\"b") == Array(#""a\"b""#.utf8))
        #expect(try CompactJSON.encode(42) == Array("42".utf8))
        #expect(try CompactJSON.encode([true, false]) == Array("[true,false]".utf8))
    }

    struct WithDate: Encodable { let when: Date }
    struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }
    struct TwoKinds: Encodable {
        func encode(to encoder: any Encoder) throws {
            var keyed = encoder.container(keyedBy: AnyKey.self)
            try keyed.encode(1, forKey: AnyKey(stringValue: "a")!)
            var unkeyed = encoder.unkeyedContainer()
            try unkeyed.encode(2)
        }
    }
    struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    @Test("What depends on JSONEncoder's strategies or breaks the rules is left to it")
    func leftToFoundation() {
        for value in [WithDate(when: Date()), Nothing(), TwoKinds()] as [any Encodable] {
            #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.encode(value) }
        }
        #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.encode([Double.nan]) }
        #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.encode(URL(string: "https://example.org/a b")) }
    }
}
