/// Hexadecimal for messages, logs and tests.
public enum Hex {
    @usableFromInline static let upper = Array("0123456789ABCDEF".utf8)
    @usableFromInline static let lower = Array("0123456789abcdef".utf8)

    /// Inlinable, so that callers in other modules get it specialised for their sequence (a digest, an array): the
    /// generic version walked every byte through protocol witnesses.
    @inlinable
    public static func string(_ bytes: some Sequence<UInt8>, separator: String = "", lowercase: Bool = false) -> String {
        let digits = lowercase ? lower : upper
        let between = Array(separator.utf8)
        // Built as UTF-8 bytes, then one String: serials and ETags are written on every OCSP answer.
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * (2 + between.count))
        for (index, byte) in bytes.enumerated() {
            if index > 0 { out.append(contentsOf: between) }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses hexadecimal (spaces and colons allowed); nil for anything else.
    public static func bytes(_ text: String) -> [UInt8]? {
        parse(text, canonical: false)
    }

    /// Parses upper-case hexadecimal with nothing else in it and an even number of digits (the form `string` writes);
    /// nil for anything else.
    public static func canonicalUpperCase(_ text: String) -> [UInt8]? {
        text.utf8.isEmpty ? nil : parse(text, canonical: true)
    }

    /// `canonical`: upper-case digits only; otherwise either case, with spaces, tabs, line breaks and colons skipped.
    private static func parse(_ text: String, canonical: Bool) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for character in text.utf8 {
            if !canonical, isSeparator(character) { continue }
            guard !canonical || character < UInt8(ascii: "a"), let value = value(of: character) else { return nil }
            if let first = high {
                out.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return high == nil ? out : nil
    }

    private static func isSeparator(_ character: UInt8) -> Bool {
        switch character {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ":"): true
        default: false
        }
    }

    private static func value(of character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
