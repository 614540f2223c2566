/// BER-TLV as PIV uses it (SP 800-73-4 part 2): tags of one to three bytes, lengths in the short form or `81 xx` /
/// `82 xx xx`. Parsing never traps: malformed input gives nil.
public struct TLV: Hashable, Sendable {
    public let tag: UInt32
    public let value: [UInt8]

    public init(_ tag: UInt32, _ value: [UInt8]) {
        self.tag = tag
        self.value = value
    }

    /// The encoded tag, length and value.
    public var bytes: [UInt8] { Self.encodeTag(tag) + Self.encodeLength(value.count) + value }

    public static func encode(_ tag: UInt32, _ value: [UInt8]) -> [UInt8] { TLV(tag, value).bytes }

    static func encodeTag(_ tag: UInt32) -> [UInt8] {
        if tag > 0xFFFF { return [UInt8(tag >> 16), UInt8((tag >> 8) & 0xFF), UInt8(tag & 0xFF)] }
        if tag > 0xFF { return [UInt8(tag >> 8), UInt8(tag & 0xFF)] }
        return [UInt8(tag)]
    }

    public static func encodeLength(_ count: Int) -> [UInt8] {
        switch count {
        case ..<0x80: [UInt8(count)]
        case ..<0x100: [0x81, UInt8(count)]
        default: [0x82, UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
        }
    }

    /// Parses a sequence of TLVs that fills `bytes` exactly; nil if anything is malformed.
    public static func parse(_ bytes: some Collection<UInt8>) -> [TLV]? {
        let bytes = Array(bytes)
        var index = 0
        var out: [TLV] = []
        while index < bytes.count {
            guard let (tlv, next) = parseOne(bytes, at: index) else { return nil }
            out.append(tlv)
            index = next
        }
        return out
    }

    /// Parses one TLV at `start`, returning it and the index after it.
    public static func parseOne(_ bytes: [UInt8], at start: Int) -> (TLV, Int)? {
        var index = start
        guard index < bytes.count else { return nil }
        var tag = UInt32(bytes[index])
        index += 1
        if tag & 0x1F == 0x1F {
            // Multi-byte tag: continuation bytes have bit 8 set; at most three bytes in all.
            var count = 0
            repeat {
                guard index < bytes.count, count < 2 else { return nil }
                tag = tag << 8 | UInt32(bytes[index])
                index += 1
                count += 1
            } while bytes[index - 1] & 0x80 != 0
        }
        guard index < bytes.count else { return nil }
        var length = Int(bytes[index])
        index += 1
        if length == 0x81 || length == 0x82 {
            let size = length - 0x80
            guard index + size <= bytes.count else { return nil }
            length = bytes[index..<(index + size)].reduce(0) { $0 << 8 | Int($1) }
            index += size
        } else if length > 0x7F {
            return nil
        }
        guard length <= bytes.count - index else { return nil }
        return (TLV(tag, Array(bytes[index..<(index + length)])), index + length)
    }
}

extension Array where Element == TLV {
    /// The value of the first TLV with `tag`.
    public func value(_ tag: UInt32) -> [UInt8]? { first { $0.tag == tag }?.value }
}
