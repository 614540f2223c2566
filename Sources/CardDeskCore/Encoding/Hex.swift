/// Hexadecimal for messages, logs and tests.
public enum Hex {
    private static let upper = Array("0123456789ABCDEF".utf8)
    private static let lower = Array("0123456789abcdef".utf8)

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
        let digits = text.filter { !$0.isWhitespace && $0 != ":" }
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }
}
