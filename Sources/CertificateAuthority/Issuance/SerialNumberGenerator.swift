import Crypto

/// Certificate serial numbers: 20 random bytes, positive, with no leading zero byte (RFC 5280 allows at most
/// 20 octets; CA/B Forum asks for at least 64 random bits: this has 159).
enum SerialNumberGenerator {
    static func randomSerialBytes() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) }
        // Positive (top bit clear) and exactly 20 octets in DER (first byte non-zero).
        bytes[0] &= 0x7F
        if bytes[0] == 0 { bytes[0] = 0x01 }
        return bytes
    }
}
