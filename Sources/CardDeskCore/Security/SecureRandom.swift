/// Random bytes from the operating system's CSPRNG (`SystemRandomNumberGenerator`), eight per call:
/// `UInt8.random(in:)` asks the system once per byte (32 system calls for a token; this makes 4).
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 7)
        while bytes.count < count {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        bytes.removeLast(bytes.count - count)
        return bytes
    }

    /// A random (version 4) UUID in lowercase, the form of every record's ID: as `UUID().uuidString.lowercased()`,
    /// without Foundation's `UUID()`, which on Linux opens, reads and closes /dev/urandom for each one (three system
    /// calls where this makes two).
    public static func uuid() -> String {
        var bytes = Self.bytes(16)
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(Hex.lower[Int(byte >> 4)])
            text.append(Hex.lower[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
