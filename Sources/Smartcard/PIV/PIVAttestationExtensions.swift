public import SwiftASN1

extension PIV {
    /// Yubico's attestation certificate extensions (1.3.6.1.4.1.41482.3.x), which CardDesk's virtual card carries too.
    public enum AttestationExtension {
        /// Firmware version: three bytes, major.minor.patch.
        public static let firmware: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 41482, 3, 3]
        /// The card's serial number, a DER INTEGER.
        public static let serialNumber: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 41482, 3, 7]
        /// PIN policy and touch policy: two bytes.
        public static let policy: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 41482, 3, 8]
    }
}
