/// A certificate serial number in the hexadecimal form `openssl x509 -serial` prints (upper case, no separators).
///
/// Comparisons use the canonical form: upper case, leading zero bytes dropped, so `00AB` and `ab` are one serial.
public struct SerialNumber: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The magnitude, big-endian, without leading zero bytes (one zero byte for zero itself).
    public let bytes: [UInt8]

    /// Inlinable, so that callers in other modules get it specialised (the generic version walked every byte through
    /// protocol witnesses).
    @inlinable
    public init(bytes: some Sequence<UInt8>) {
        var trimmed = Array(bytes.drop(while: { $0 == 0 }))
        if trimmed.isEmpty { trimmed = [0] }
        self.bytes = trimmed
    }

    /// Parses hexadecimal, optionally prefixed `serial=` or `0x`, with optional `:` separators.
    public init(hex text: String) throws(CardDeskError) {
        // The canonical form (what the store and JSON hold) first: upper-case digits only, an even count. Every row
        // and every request names a certificate this way.
        if let bytes = Hex.canonicalUpperCase(text), bytes.count <= 32 {
            self.init(bytes: bytes)
            return
        }
        var digits = Substring(text.trimmingWhitespace())
        for prefix in ["serial=", "0x", "0X"] where digits.hasPrefix(prefix) {
            digits = digits.dropFirst(prefix.count)
        }
        let cleaned = digits.filter { $0 != ":" }
        guard !cleaned.isEmpty, cleaned.count <= 64, cleaned.allSatisfy(\.isHexDigit) else {
            throw CardDeskError(.invalidInput, "\"\(text)\" is not a serial number: give it in hexadecimal, as `openssl x509 -serial` prints it.")
        }
        let padded = cleaned.count % 2 == 1 ? "0" + cleaned : String(cleaned)
        guard let bytes = Hex.bytes(padded) else {
            throw CardDeskError(.invalidInput, "\"\(text)\" is not a serial number in hexadecimal.")
        }
        self.init(bytes: bytes)
    }

    /// Upper-case hexadecimal, two digits per byte.
    public var hex: String { Hex.string(bytes) }

    public var description: String { hex }
    public static func < (lhs: Self, rhs: Self) -> Bool {
        lhs.bytes.count != rhs.bytes.count ? lhs.bytes.count < rhs.bytes.count : lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    public init(from decoder: any Decoder) throws {
        try self.init(hex: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

extension String {
    func trimmingWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }
}
