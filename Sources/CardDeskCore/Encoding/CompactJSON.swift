public import Foundation

/// JSON for the server's answers, written without Foundation's `JSONEncoder`: the same JSON for the types CardDesk
/// sends (objects, arrays, strings, whole and decimal numbers, booleans, null, and `Data` as base64, as `JSONEncoder`
/// writes it), at a fraction of the CPU. Foundation's encoder checks every value against the types it treats
/// specially (dates, URLs, decimals, dictionaries) through dynamic casts; here that is one metadata comparison each.
///
/// What it does not write itself it refuses (`Unsupported`), and the caller then uses `JSONEncoder` for the whole
/// value: dates, URLs and decimals (whose form depends on the encoder's strategies), numbers that are not finite,
/// `superEncoder`, a value that encodes nothing, and containers used against the rules (one value asking for two
/// kinds of container). Keys keep the order the value wrote them in.
public enum CompactJSON {
    /// Something this writer leaves to `JSONEncoder`.
    public struct Unsupported: Error {}

    /// The JSON text of `value`, as UTF-8.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let root = Node()
        try Writer.put(value, into: root)
        guard !root.refused, root.kind != .empty else { throw Unsupported() }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        try root.write(into: &out)
        return out
    }

    // MARK: The tree (a value's containers may be filled in any order, so it is written once complete)

    final class Node {
        enum Kind { case empty, object, array, scalar }
        var kind = Kind.empty
        var keys: [String] = []
        var children: [Node] = []
        var scalar: [UInt8] = []
        /// A rule of `Encoder` broken (or something `JSONEncoder` must decide): the whole value goes to it instead.
        var refused = false

        func become(_ wanted: Kind) {
            if kind == .empty { kind = wanted } else if kind != wanted { refused = true }
        }

        /// The child for `key` (a key written twice keeps its place and takes the last value, as `JSONEncoder` does).
        func child(forKey key: String) -> Node {
            let node = Node()
            if let index = keys.firstIndex(of: key) {
                children[index] = node
            } else {
                keys.append(key)
                children.append(node)
            }
            return node
        }

        func appendChild() -> Node {
            let node = Node()
            children.append(node)
            return node
        }

        func write(into out: inout [UInt8]) throws {
            if refused { throw Unsupported() }
            switch kind {
            case .scalar:
                out.append(contentsOf: scalar)
            case .object, .empty:
                out.append(UInt8(ascii: "{"))
                for (index, key) in keys.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    CompactJSON.writeString(key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    try children[index].write(into: &out)
                }
                out.append(UInt8(ascii: "}"))
            case .array:
                out.append(UInt8(ascii: "["))
                for (index, child) in children.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    try child.write(into: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
        }
    }

    /// A string in JSON: quotes, backslashes and control characters escaped, everything else as UTF-8.
    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), Hex.lower[Int(byte >> 4)], Hex.lower[Int(byte & 0x0F)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: The Encoder

    struct Writer: Encoder {
        let node: Node
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        /// Puts `value` into `node`: the special types here, any other through its own `encode(to:)`.
        static func put<T: Encodable>(_ value: T, into node: Node, path: [any CodingKey] = []) throws {
            if T.self == String.self {
                string(value as! String, node)
            } else if T.self == Data.self {
                node.become(.scalar)
                node.scalar = [UInt8(ascii: "\"")] + Array((value as! Data).base64EncodedString().utf8) + [UInt8(ascii: "\"")]
            } else if T.self == Date.self || T.self == URL.self || T.self == Decimal.self || T.self == NSNumber.self {
                // Their JSON depends on JSONEncoder's strategies.
                node.refused = true
            } else {
                try value.encode(to: Writer(node: node, codingPath: path))
            }
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            node.become(.object)
            return KeyedEncodingContainer(Keyed<Key>(node: node, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            node.become(.array)
            return Unkeyed(node: node, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            Single(node: node, codingPath: codingPath)
        }
    }

    /// A number, `true`, `false` or `null`, as its text.
    static func literal(_ node: Node, _ text: String) {
        node.become(.scalar)
        node.scalar = Array(text.utf8)
    }

    static func string(_ value: String, _ node: Node) {
        node.become(.scalar)
        node.scalar.removeAll(keepingCapacity: true)
        writeString(value, into: &node.scalar)
    }

    /// A float as its own shortest text (a Float as a Float, as JSONEncoder writes it); not finite: left to JSONEncoder.
    static func floating<F: BinaryFloatingPoint & LosslessStringConvertible>(_ node: Node, _ value: F) {
        guard value.isFinite else {
            node.refused = true
            return
        }
        literal(node, value.description)
    }

    struct Single: SingleValueEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]

        func encodeNil() { literal(node, "null") }
        func encode(_ value: Bool) { literal(node, value ? "true" : "false") }
        func encode(_ value: String) { string(value, node) }
        func encode(_ value: Double) { floating(node, value) }
        func encode(_ value: Float) { floating(node, value) }
        func encode(_ value: Int) { literal(node, String(value)) }
        func encode(_ value: Int8) { literal(node, String(value)) }
        func encode(_ value: Int16) { literal(node, String(value)) }
        func encode(_ value: Int32) { literal(node, String(value)) }
        func encode(_ value: Int64) { literal(node, String(value)) }
        func encode(_ value: UInt) { literal(node, String(value)) }
        func encode(_ value: UInt8) { literal(node, String(value)) }
        func encode(_ value: UInt16) { literal(node, String(value)) }
        func encode(_ value: UInt32) { literal(node, String(value)) }
        func encode(_ value: UInt64) { literal(node, String(value)) }
        func encode<T: Encodable>(_ value: T) throws { try Writer.put(value, into: node, path: codingPath) }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        let codingPath: [any CodingKey]

        private func single(_ key: Key) -> Single { Single(node: node.child(forKey: key.stringValue), codingPath: codingPath + [key]) }

        func encodeNil(forKey key: Key) { single(key).encodeNil() }
        func encode(_ value: Bool, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: String, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: Double, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: Float, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: Int, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: Int8, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: Int16, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: Int32, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: Int64, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: UInt, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: UInt8, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: UInt16, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: UInt32, forKey key: Key) { single(key).encode(value) }
        func encode(_ value: UInt64, forKey key: Key) { single(key).encode(value) }
        func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try single(key).encode(value) }

        func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let child = node.child(forKey: key.stringValue)
            child.become(.object)
            return KeyedEncodingContainer(Keyed<NestedKey>(node: child, codingPath: codingPath + [key]))
        }

        func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let child = node.child(forKey: key.stringValue)
            child.become(.array)
            return Unkeyed(node: child, codingPath: codingPath + [key])
        }

        func superEncoder() -> any Encoder { refuse() }
        func superEncoder(forKey key: Key) -> any Encoder { refuse() }

        private func refuse() -> any Encoder {
            node.refused = true
            return Writer(node: Node(), codingPath: codingPath)
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        var count: Int { node.children.count }

        private func single() -> Single { Single(node: node.appendChild(), codingPath: codingPath) }

        mutating func encodeNil() { single().encodeNil() }
        mutating func encode(_ value: Bool) { single().encode(value) }
        mutating func encode(_ value: String) { single().encode(value) }
        mutating func encode(_ value: Double) { single().encode(value) }
        mutating func encode(_ value: Float) { single().encode(value) }
        mutating func encode(_ value: Int) { single().encode(value) }
        mutating func encode(_ value: Int8) { single().encode(value) }
        mutating func encode(_ value: Int16) { single().encode(value) }
        mutating func encode(_ value: Int32) { single().encode(value) }
        mutating func encode(_ value: Int64) { single().encode(value) }
        mutating func encode(_ value: UInt) { single().encode(value) }
        mutating func encode(_ value: UInt8) { single().encode(value) }
        mutating func encode(_ value: UInt16) { single().encode(value) }
        mutating func encode(_ value: UInt32) { single().encode(value) }
        mutating func encode(_ value: UInt64) { single().encode(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { try single().encode(value) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let child = node.appendChild()
            child.become(.object)
            return KeyedEncodingContainer(Keyed<NestedKey>(node: child, codingPath: codingPath))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let child = node.appendChild()
            child.become(.array)
            return Unkeyed(node: child, codingPath: codingPath)
        }

        mutating func superEncoder() -> any Encoder {
            node.refused = true
            return Writer(node: Node(), codingPath: codingPath)
        }
    }
}
