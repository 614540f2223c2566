import CardDeskCore

/// Certificate serial numbers: 20 random bytes, positive, with no leading zero byte (RFC 5280 allows at most
/// 20 octets; CA/B Forum asks for at least 64 random bits: this has 159).
enum SerialNumberGenerator {
    static func randomSerialBytes() -> [UInt8] {
        // One issuance, one serial: drawn 8 bytes per system call (per byte, it was 20 calls per certificate).
        var bytes = SecureRandom.bytes(20)
        // Positive (top bit clear) and exactly 20 octets in DER (first byte non-zero).
        bytes[0] &= 0x7F
        if bytes[0] == 0 { bytes[0] = 0x01 }
        return bytes
    }
}
