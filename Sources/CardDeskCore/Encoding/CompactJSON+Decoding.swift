public import Foundation

/// Reading the API's request bodies without Foundation's `JSONDecoder`, the counterpart of `encode`: a strict RFC 8259
/// parser and a `Decoder` for what CardDesk's requests hold (objects, arrays, strings, whole numbers, booleans, null,
/// and `Data` as base64, as `JSONDecoder` reads it).
///
/// It only ever answers what `JSONDecoder` would answer, or refuses: whatever it does not read itself, or reads
/// differently from `JSONDecoder`'s defaults, throws `Unsupported`, and so does every error (malformed text, a key
/// missing, a wrong type, a value's own `init(from:)` refusing). The caller then decodes the body again with
/// `JSONDecoder`, which gives the error message people see. Refused: dates, URLs and decimals (their form depends on
/// the decoder's strategies), numbers with a fraction or an exponent, and integers out of range (`JSONDecoder` has
/// its own rules for those), duplicate keys, a lone UTF-16 surrogate, invalid UTF-8, a byte-order mark, nesting past
/// 64 levels, `superDecoder`.
extension CompactJSON {
    /// The value of type `T` in the JSON text `bytes` (UTF-8).
    public static func decode<T: Decodable, Bytes: Collection<UInt8>>(_ type: T.Type, from bytes: Bytes) throws -> T {
        let value = try bytes.withContiguousStorageIfAvailable { buffer in
            var parser = Parser(bytes: buffer)
            return try parser.document()
        } ?? {
            let copy = Array(bytes)
            return try copy.withUnsafeBufferPointer { buffer in
                var parser = Parser(bytes: buffer)
                return try parser.document()
            }
        }()
        return try ValueDecoder.unbox(value, as: T.self, path: [])
    }

    /// A parsed JSON value.
    enum Value {
        case object([String: Value])
        case array([Value])
        case string(String)
        /// The number's text; a whole number only (`-?(0|[1-9][0-9]*)`): anything else is refused when parsed.
        case integer(String)
        case bool(Bool)
        case null
    }

    // MARK: Parsing (RFC 8259, nothing more)

    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        var depth = 0
        static let maximumDepth = 64

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func document() throws -> Value {
            skipWhitespace()
            let value = try self.value()
            skipWhitespace()
            guard index == bytes.count else { throw Unsupported() }
            return value
        }

        private mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        private mutating func expect(_ literal: StaticString) throws {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - index >= count else { throw Unsupported() }
            let literalBytes = UnsafeBufferPointer(start: literal.utf8Start, count: count)
            for offset in 0..<count where bytes[index + offset] != literalBytes[offset] { throw Unsupported() }
            index += count
        }

        private mutating func value() throws -> Value {
            guard index < bytes.count else { throw Unsupported() }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object()
            case UInt8(ascii: "["): return try array()
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return try integer()
            }
        }

        private mutating func nest() throws {
            depth += 1
            guard depth <= Self.maximumDepth else { throw Unsupported() }
        }

        private mutating func object() throws -> Value {
            var members: [String: Value] = [:]
            try elements(closing: UInt8(ascii: "}")) { parser in
                guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "\"") else { throw Unsupported() }
                let key = try parser.string()
                parser.skipWhitespace()
                guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: ":") else { throw Unsupported() }
                parser.index += 1
                parser.skipWhitespace()
                guard members.updateValue(try parser.value(), forKey: key) == nil else { throw Unsupported() }
            }
            return .object(members)
        }

        private mutating func array() throws -> Value {
            var elements: [Value] = []
            try self.elements(closing: UInt8(ascii: "]")) { parser in elements.append(try parser.value()) }
            return .array(elements)
        }

        /// An object's members or an array's elements, from its opening bracket to `closing`, each read by `element`,
        /// separated by commas (none after the last).
        private mutating func elements(closing: UInt8, _ element: (inout Parser) throws -> Void) throws {
            try nest()
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == closing {
                index += 1
                depth -= 1
                return
            }
            while true {
                skipWhitespace()
                try element(&self)
                skipWhitespace()
                guard index < bytes.count else { throw Unsupported() }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == closing else { throw Unsupported() }
                index += 1
                depth -= 1
                return
            }
        }

        /// A string from its opening quote; escapes decoded, UTF-8 checked.
        private mutating func string() throws -> String {
            index += 1
            let start = index
            // The usual case: no escape; the bytes are the string's.
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    guard let text = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self) else { throw Unsupported() }
                    index += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") { break }
                guard byte >= 0x20 else { throw Unsupported() }
                index += 1
            }
            var out = Array(bytes[start..<index])
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: out, as: UTF8.self) else { throw Unsupported() }
                    index += 1
                    return text
                case UInt8(ascii: "\\"):
                    index += 1
                    guard index < bytes.count else { throw Unsupported() }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = UInt32(try hex4())
                        if (0xD800...0xDBFF).contains(scalar) {
                            // A high surrogate must be followed by an escaped low one.
                            try expect("\\u")
                            let low = UInt32(try hex4())
                            guard (0xDC00...0xDFFF).contains(low) else { throw Unsupported() }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw Unsupported()
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw Unsupported() }
                        out.append(contentsOf: String(Character(unicode)).utf8)
                    default:
                        throw Unsupported()
                    }
                default:
                    guard byte >= 0x20 else { throw Unsupported() }
                    out.append(byte)
                    index += 1
                }
            }
            throw Unsupported()
        }

        private mutating func hex4() throws -> UInt16 {
            guard bytes.count - index >= 4 else { throw Unsupported() }
            var value: UInt16 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw Unsupported()
                }
                value = value << 4 | UInt16(digit)
                index += 1
            }
            return value
        }

        /// A whole number; a fraction or an exponent is refused (left to `JSONDecoder`).
        private mutating func integer() throws -> Value {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { throw Unsupported() }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            }
            if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) { throw Unsupported() }
            return .integer(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        }
    }

    // MARK: Decoding

    struct ValueDecoder: Decoder {
        let value: Value
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        /// `T` from `value`: `Data` from base64 (as `JSONDecoder` reads it by default); the types whose form depends on
        /// `JSONDecoder`'s strategies are refused; every other type decodes itself.
        static func unbox<T: Decodable>(_ value: Value, as type: T.Type, path: [any CodingKey]) throws -> T {
            if T.self == Data.self {
                guard case .string(let text) = value, let data = Data(base64Encoded: text) else { throw Unsupported() }
                return unsafeBitCast(data, to: T.self)
            }
            if T.self == Date.self || T.self == URL.self || T.self == Decimal.self { throw Unsupported() }
            return try T(from: ValueDecoder(value: value, codingPath: path))
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard case .object(let members) = value else { throw Unsupported() }
            return KeyedDecodingContainer(KeyedReader<Key>(members: members, codingPath: codingPath))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case .array(let elements) = value else { throw Unsupported() }
            return UnkeyedReader(elements: elements, codingPath: codingPath)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer {
            SingleReader(value: value, codingPath: codingPath)
        }
    }

    /// A scalar of `value` as `T`: strings, booleans, whole numbers in range; nil for anything else.
    static func scalar<T>(_ value: Value, as type: T.Type) -> T? {
        switch value {
        case .string(let text): return T.self == String.self ? unsafeBitCast(text, to: T.self) : nil
        case .bool(let flag): return T.self == Bool.self ? unsafeBitCast(flag, to: T.self) : nil
        case .integer(let text):
            // Metatype comparisons, not casts: a cast to a protocol looks up a conformance at every value.
            func whole<I: FixedWidthInteger>(_: I.Type) -> T? { I(text).map { unsafeBitCast($0, to: T.self) } }
            if T.self == Int.self { return whole(Int.self) }
            if T.self == Int64.self { return whole(Int64.self) }
            if T.self == Int32.self { return whole(Int32.self) }
            if T.self == Int16.self { return whole(Int16.self) }
            if T.self == Int8.self { return whole(Int8.self) }
            if T.self == UInt.self { return whole(UInt.self) }
            if T.self == UInt64.self { return whole(UInt64.self) }
            if T.self == UInt32.self { return whole(UInt32.self) }
            if T.self == UInt16.self { return whole(UInt16.self) }
            if T.self == UInt8.self { return whole(UInt8.self) }
            return nil
        default: return nil
        }
    }

    /// `T` from `value` in a generic decode: a scalar directly, anything else through its `init(from:)` (a scalar type
    /// that `scalar` could not read comes back to the containers' own methods for it, which refuse it).
    static func any<T: Decodable>(_ value: Value, as type: T.Type, path: [any CodingKey]) throws -> T {
        if let scalar = scalar(value, as: T.self) { return scalar }
        return try ValueDecoder.unbox(value, as: T.self, path: path)
    }

    /// A scalar, or the refusal.
    static func required<T>(_ value: Value, as type: T.Type) throws -> T {
        guard let scalar = scalar(value, as: T.self) else { throw Unsupported() }
        return scalar
    }

    struct KeyedReader<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let members: [String: Value]
        let codingPath: [any CodingKey]

        var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

        private func member(_ key: Key) throws -> Value {
            guard let value = members[key.stringValue] else { throw Unsupported() }
            return value
        }

        func decodeNil(forKey key: Key) throws -> Bool {
            if case .null = try member(key) { return true }
            return false
        }

        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try primitive(key) }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try primitive(key) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { throw Unsupported() }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw Unsupported() }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try primitive(key) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try primitive(key) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try primitive(key) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try primitive(key) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try primitive(key) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try primitive(key) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try primitive(key) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try primitive(key) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try primitive(key) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try primitive(key) }

        private func primitive<T>(_ key: Key) throws -> T {
            try CompactJSON.required(try member(key), as: T.self)
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try CompactJSON.any(try member(key), as: T.self, path: codingPath + [key])
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { throw Unsupported() }
        func superDecoder(forKey key: Key) throws -> any Decoder { throw Unsupported() }
    }

    struct UnkeyedReader: UnkeyedDecodingContainer {
        let elements: [Value]
        let codingPath: [any CodingKey]
        var currentIndex = 0

        init(elements: [Value], codingPath: [any CodingKey]) {
            self.elements = elements
            self.codingPath = codingPath
        }

        var count: Int? { elements.count }
        var isAtEnd: Bool { currentIndex >= elements.count }

        private mutating func next() throws -> Value {
            guard !isAtEnd else { throw Unsupported() }
            defer { currentIndex += 1 }
            return elements[currentIndex]
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd else { throw Unsupported() }
            if case .null = elements[currentIndex] {
                currentIndex += 1
                return true
            }
            return false
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try CompactJSON.any(try next(), as: T.self, path: codingPath)
        }

        mutating func decode(_ type: Bool.Type) throws -> Bool { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: String.Type) throws -> String { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: Double.Type) throws -> Double { throw Unsupported() }
        mutating func decode(_ type: Float.Type) throws -> Float { throw Unsupported() }
        mutating func decode(_ type: Int.Type) throws -> Int { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: Int8.Type) throws -> Int8 { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: Int16.Type) throws -> Int16 { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: Int32.Type) throws -> Int32 { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: Int64.Type) throws -> Int64 { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: UInt.Type) throws -> UInt { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try CompactJSON.required(try next(), as: type) }
        mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try CompactJSON.required(try next(), as: type) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try ValueDecoder(value: try next(), codingPath: codingPath).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: try next(), codingPath: codingPath).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder { throw Unsupported() }
    }

    struct SingleReader: SingleValueDecodingContainer {
        let value: Value
        let codingPath: [any CodingKey]

        func decodeNil() -> Bool {
            if case .null = value { return true }
            return false
        }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try CompactJSON.any(value, as: T.self, path: codingPath)
        }

        func decode(_ type: Bool.Type) throws -> Bool { try CompactJSON.required(value, as: type) }
        func decode(_ type: String.Type) throws -> String { try CompactJSON.required(value, as: type) }
        func decode(_ type: Double.Type) throws -> Double { throw Unsupported() }
        func decode(_ type: Float.Type) throws -> Float { throw Unsupported() }
        func decode(_ type: Int.Type) throws -> Int { try CompactJSON.required(value, as: type) }
        func decode(_ type: Int8.Type) throws -> Int8 { try CompactJSON.required(value, as: type) }
        func decode(_ type: Int16.Type) throws -> Int16 { try CompactJSON.required(value, as: type) }
        func decode(_ type: Int32.Type) throws -> Int32 { try CompactJSON.required(value, as: type) }
        func decode(_ type: Int64.Type) throws -> Int64 { try CompactJSON.required(value, as: type) }
        func decode(_ type: UInt.Type) throws -> UInt { try CompactJSON.required(value, as: type) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try CompactJSON.required(value, as: type) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try CompactJSON.required(value, as: type) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try CompactJSON.required(value, as: type) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try CompactJSON.required(value, as: type) }
    }
}
