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
}
