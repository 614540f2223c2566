/// Hexadecimal for messages, logs and tests.
public enum Hex {
    public static func string(_ bytes: some Sequence<UInt8>, separator: String = "", lowercase: Bool = false) -> String {
        let digits = Array(lowercase ? "0123456789abcdef" : "0123456789ABCDEF")
        return bytes.map { String([digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]]) }.joined(separator: separator)
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
