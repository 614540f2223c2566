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

    /// Every kind of value a body may hold except fractional numbers (which `CompactJSON` leaves to `JSONDecoder`).
    struct Plain: Codable, Equatable {
        enum Kind: String, Codable { case one, two }
        struct Inner: Codable, Equatable { let values: [Int?]; let nested: [[String]] }
        let kind: Kind
        let numbers: [Int64]
        let unsigned: UInt64
        let small: Int8
        let flag: Bool
        let missing: String?
        let table: [String: Int]
        let numbered: [Int: String]
        let inner: Inner
        let blobs: [Data]
    }

    static let plain = Plain(
        kind: .two, numbers: [Int64.min, -1, 0, Int64.max], unsigned: UInt64.max, small: -128, flag: true, missing: nil,
        table: ["a": 1, "\"b\"": 2, "": 3], numbered: [7: "seven", -1: "minus"],
        inner: .init(values: [1, nil, 3], nested: [[], ["x", "y"]]), blobs: [Data(), Data([0, 255])]
    )

    struct Everything: Codable, Equatable {
        let plain: Plain
        let decimal: Double
        let float: Float
    }

    @Test("Numbers, booleans, null, nested containers, dictionaries and arrays of data read back equal")
    func everything() throws {
        let value = Everything(plain: Self.plain, decimal: -0.000001234, float: 1.1)
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

    // MARK: Reading request bodies

    /// What `CompactJSON.decode` read, written again with sorted keys: nil when it refused.
    static func compactReading<T: Codable>(_ type: T.Type, _ text: [UInt8]) -> Data? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? CompactJSON.decode(T.self, from: text)).flatMap { try? encoder.encode($0) }
    }

    /// What `JSONDecoder` read, written the same way: nil when it refused.
    static func foundationReading<T: Codable>(_ type: T.Type, _ text: [UInt8]) -> Data? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? JSONDecoder().decode(T.self, from: Data(text))).flatMap { try? encoder.encode($0) }
    }

    /// CompactJSON reads `body` (which JSONEncoder wrote), as JSONDecoder reads it.
    static func readsAlike<T: Codable>(_ type: T.Type, _ body: Data) {
        let compact = compactReading(T.self, Array(body))
        #expect(compact != nil, "CompactJSON refused a \(T.self) JSONEncoder wrote")
        #expect(compact == foundationReading(T.self, Array(body)))
    }

    @Test("The API's request bodies read as JSONDecoder reads them, for awkward strings and optional fields present or not")
    func requestBodies() throws {
        let encoder = JSONEncoder()
        for text in Self.awkwardStrings {
            let data = Data(text.utf8)
            Self.readsAlike(LoginAPI.Login.self, try encoder.encode(LoginAPI.Login(cardSerial: text, challenge: text, signature: data)))
            Self.readsAlike(RenewalAPI.Start.self, try encoder.encode(RenewalAPI.Start(cardSerial: text, challenge: text, signature: data, witness: text.isEmpty ? nil : data)))
            Self.readsAlike(RenewalAPI.Submit.self, try encoder.encode(RenewalAPI.Submit(profile: .signing, csr: data, attestation: text.isEmpty ? nil : data)))
            Self.readsAlike(LoginAPI.AgentCheckIn.self, try encoder.encode(LoginAPI.AgentCheckIn(bridgePort: 43490)))
        }
        // Escapes, whitespace between tokens, and keys in any order.
        let escaped = Array(#" { "signature" : "AAEC/w==" ,"challenge":"\u00e9\ud83e\udeaa\n\/\"\\\b\f\r\t","cardSerial":"A1" } "#.utf8)
        let read = try CompactJSON.decode(LoginAPI.Login.self, from: escaped)
        #expect(read.challenge == "é🪪\n/\"\\\u{8}\u{c}\r\t")
        #expect(read.signature == Data([0, 1, 2, 255]))
        #expect(Self.compactReading(LoginAPI.Login.self, escaped) == Self.foundationReading(LoginAPI.Login.self, escaped))
    }

    @Test("Whole numbers at their limits, booleans, null, enumerations, nested containers and dictionaries read back equal")
    func plainValues() throws {
        let text = Array(try JSONEncoder().encode(Self.plain))
        #expect(try CompactJSON.decode(Plain.self, from: text) == Self.plain)
        #expect(try CompactJSON.decode([String?].self, from: Array(#"["a",null]"#.utf8)) == ["a", nil])
        #expect(try CompactJSON.decode(Int8.self, from: Array("-128".utf8)) == -128)
    }

    struct Port: Codable { let port: Int }
    struct Stamp: Codable { let at: Date }
    struct Amount: Codable { let amount: Double }

    @Test("What JSONDecoder refuses, or reads by its own rules, CompactJSON refuses too")
    func readingLeftToFoundation() throws {
        let texts: [[UInt8]] = [
            #"{"port":1,"port":2}"#, #"{"port":01}"#, #"{"port":1.0}"#, #"{"port":1e2}"#, #"{"port":-0.5}"#,
            #"{"port":99999999999999999999}"#, #"{"port":"1"}"#, #"{"port":1}x"#, #"{"port":1,}"#, #"{,}"#, "", " ",
            #"{"port":true}"#, #"{"port":null}"#, #"{}"#, #"{"port":+1}"#, #"{"port":-}"#, #"{'port':1}"#,
        ].map { Array($0.utf8) } + [
            [0xEF, 0xBB, 0xBF] + Array(#"{"port":1}"#.utf8),
        ]
        for text in texts {
            #expect(throws: CompactJSON.Unsupported.self, "\(String(decoding: text, as: UTF8.self))") { try CompactJSON.decode(Port.self, from: text) }
        }
        let strings: [[UInt8]] = [
            Array(#""\ud800""#.utf8), Array(#""\udc00x""#.utf8), Array(#""\ud800\u0041""#.utf8), Array(#""\x""#.utf8),
            Array(#""\u12""#.utf8), Array("\"tab\there\"".utf8), [0x22, 0xC3, 0x28, 0x22], [0x22, 0xFF, 0x22], Array(#""open"#.utf8),
        ]
        for text in strings {
            #expect(throws: CompactJSON.Unsupported.self, "\(text)") { try CompactJSON.decode(String.self, from: text) }
        }
        #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.decode(Stamp.self, from: Array(#"{"at":"2026-12-01T10:00:00Z"}"#.utf8)) }
        #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.decode(Amount.self, from: Array(#"{"amount":1}"#.utf8)) }
        #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.decode(Data.self, from: Array(#""not base64!""#.utf8)) }
        // A scalar of the wrong kind where the type is only known generically (an optional in an array): refused by
        // the container's own method for it, not decoded again through its `init(from:)` without end.
        #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.decode([Int?].self, from: Array(#"["1"]"#.utf8)) }
        #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.decode([String?].self, from: Array("[1]".utf8)) }
        let deep = Array((String(repeating: "[", count: 65) + String(repeating: "]", count: 65)).utf8)
        #expect(throws: CompactJSON.Unsupported.self) { try CompactJSON.decode([[[Int]]].self, from: deep) }
        // Malformed bodies and wrong values JSONDecoder refuses too: the fallback gives its message. (A duplicate key,
        // a leading zero, a fraction or an exponent, a trailing comma, single quotes and a byte-order mark it may read
        // by rules of its own, some of them JSON5's: it reads `{'port':1}`, which is why they are all left to it.)
        let refusedByBoth = [
            #"{"port":99999999999999999999}"#, #"{"port":"1"}"#, #"{"port":1}x"#, #"{,}"#, "", " ", #"{"port":true}"#,
            #"{"port":null}"#, #"{}"#, #"{"port":+1}"#, #"{"port":-}"#,
        ]
        for text in refusedByBoth { #expect(Self.foundationReading(Port.self, Array(text.utf8)) == nil, "\(text)") }
    }
}
