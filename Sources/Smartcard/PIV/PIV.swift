/// The numbers of the PIV card application (NIST SP 800-73-4, SP 800-78-4) and of the YubiKey extensions to it,
/// shared by the card side (the virtual card) and the host side (`PIVClient`).
public enum PIV {
    /// The PIV application identifier (a card accepts SELECT by any prefix down to the RID A0 00 00 03 08).
    public static let aid: [UInt8] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00]
    public static let rid: [UInt8] = Array(aid.prefix(5))
    /// The PIN and PUK every new card (and YubiKey) ships with.
    public static let factoryPIN = "123456"
    public static let factoryPUK = "12345678"

    public enum Instruction {
        public static let select: UInt8 = 0xA4
        public static let getData: UInt8 = 0xCB
        public static let putData: UInt8 = 0xDB
        public static let verify: UInt8 = 0x20
        public static let changeReferenceData: UInt8 = 0x24
        public static let resetRetryCounter: UInt8 = 0x2C
        public static let generateKeyPair: UInt8 = 0x47
        public static let generalAuthenticate: UInt8 = 0x87
        public static let getResponse: UInt8 = 0xC0
        // YubiKey extensions (ykpiv.h).
        public static let yubicoSetManagementKey: UInt8 = 0xFF
        public static let yubicoImportKey: UInt8 = 0xFE
        public static let yubicoGetVersion: UInt8 = 0xFD
        public static let yubicoReset: UInt8 = 0xFB
        public static let yubicoSetPINRetries: UInt8 = 0xFA
        public static let yubicoAttest: UInt8 = 0xF9
        public static let yubicoGetSerial: UInt8 = 0xF8
        public static let yubicoGetMetadata: UInt8 = 0xF7
    }

    /// Key references for VERIFY, CHANGE REFERENCE DATA and GENERAL AUTHENTICATE.
    public enum KeyReference {
        public static let pin: UInt8 = 0x80
        public static let puk: UInt8 = 0x81
        public static let managementKey: UInt8 = 0x9B
        public static let authentication: UInt8 = 0x9A
        public static let signature: UInt8 = 0x9C
        public static let keyManagement: UInt8 = 0x9D
        public static let cardAuthentication: UInt8 = 0x9E
        /// YubiKey's attestation key.
        public static let attestation: UInt8 = 0xF9
    }

    /// Asymmetric algorithm identifiers (GENERATE, GENERAL AUTHENTICATE P1).
    public enum KeyAlgorithm {
        public static let rsa1024: UInt8 = 0x06
        public static let rsa2048: UInt8 = 0x07
        public static let eccP256: UInt8 = 0x11
        public static let eccP384: UInt8 = 0x14
    }

    /// Data object tags (the `5C` tag list of GET DATA / PUT DATA).
    public enum Object {
        public static let discovery: UInt32 = 0x7E
        public static let cardCapabilityContainer: UInt32 = 0x5FC107
        public static let chuid: UInt32 = 0x5FC102
        public static let authenticationCertificate: UInt32 = 0x5FC105
        public static let signatureCertificate: UInt32 = 0x5FC10A
        public static let keyManagementCertificate: UInt32 = 0x5FC10B
        public static let cardAuthenticationCertificate: UInt32 = 0x5FC101
        public static let keyHistory: UInt32 = 0x5FC10C
        /// Yubico: the attestation key's certificate (slot F9).
        public static let yubicoAttestationCertificate: UInt32 = 0x5FFF01

        /// The certificate object of a key slot: 9A, 9C, 9D, 9E, the 20 retired slots 82–95, and F9.
        public static func certificate(forKey reference: UInt8) -> UInt32? {
            switch reference {
            case KeyReference.authentication: authenticationCertificate
            case KeyReference.signature: signatureCertificate
            case KeyReference.keyManagement: keyManagementCertificate
            case KeyReference.cardAuthentication: cardAuthenticationCertificate
            case 0x82...0x95: 0x5FC10D + UInt32(reference - 0x82)
            case KeyReference.attestation: yubicoAttestationCertificate
            default: nil
            }
        }

        /// Objects a card accepts to store: the PIV ones (5FC101–5FC123, discovery excluded) and Yubico's 5FFFxx.
        public static func isWritable(_ tag: UInt32) -> Bool {
            (0x5FC101...0x5FC123).contains(tag) || (0x5FFF00...0x5FFFFF).contains(tag)
        }
    }

    /// The application property template a card answers SELECT with.
    public static func applicationPropertyTemplate(label: String) -> [UInt8] {
        TLV.encode(0x61,
            TLV.encode(0x4F, [0x00, 0x00, 0x10, 0x00, 0x01, 0x00])
            + TLV.encode(0x79, TLV.encode(0x4F, rid))
            + TLV.encode(0x50, Array(label.utf8)))
    }

    /// A PIN or PUK as VERIFY and CHANGE REFERENCE DATA carry it: the digits, padded to 8 bytes with FF.
    public static func paddedPIN(_ pin: String) -> [UInt8] {
        let digits = Array(pin.utf8.prefix(8))
        return digits + Array(repeating: 0xFF, count: 8 - digits.count)
    }

    /// The digits of a padded PIN (everything before the first FF).
    public static func unpaddedPIN(_ bytes: [UInt8]) -> [UInt8] {
        Array(bytes.prefix { $0 != 0xFF })
    }

    /// The CHUID (SP 800-73-4 table 9): FASC-N, GUID (the card's 16-byte identifier), expiry date, an empty
    /// signature and the error-detection code.
    public static func chuid(guid: [UInt8], expiry: String = "20991231") -> [UInt8] {
        precondition(guid.count == 16)
        // A FASC-N of agency code 9999 as SP 800-73-4 allows for non-federal issuers (all-ones BCD filler).
        let fascn: [UInt8] = [0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB]
        return TLV.encode(0x30, fascn) + TLV.encode(0x34, guid) + TLV.encode(0x35, Array(expiry.utf8)) + TLV.encode(0x3E, []) + TLV.encode(0xFE, [])
    }

    /// The GUID CardDesk gives a card: "CardDesk" in ASCII, then the 8 bytes of its serial number (`PIVCardSession.serial`).
    public static func cardDeskGUID(serialBytes: [UInt8]) -> [UInt8] {
        precondition(serialBytes.count == 8)
        return Array("CardDesk".utf8) + serialBytes
    }

    /// A new GUID with 8 random serial bytes.
    public static func newCardDeskGUID() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return cardDeskGUID(serialBytes: (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The GUID inside a CHUID, if there is one.
    public static func guid(fromCHUID chuid: [UInt8]) -> [UInt8]? {
        TLV.parse(chuid)?.value(0x34).flatMap { $0.count == 16 ? $0 : nil }
    }

    /// A certificate object's contents: `70 <DER> 71 00 FE 00` (uncompressed certificate).
    public static func certificateObject(_ der: [UInt8]) -> [UInt8] {
        TLV.encode(0x70, der) + TLV.encode(0x71, [0x00]) + TLV.encode(0xFE, [])
    }

    /// The DER certificate inside a certificate object (compressed certificates are not supported).
    public static func certificate(fromObject object: [UInt8]) -> [UInt8]? {
        guard let fields = TLV.parse(object), let der = fields.value(0x70), !der.isEmpty else { return nil }
        if let info = fields.value(0x71), info.first.map({ $0 & 0x01 != 0 }) == true { return nil }
        return der
    }
}

extension PIV {
    /// The block an RSA card key signs for a PKCS#1 v1.5 SHA-256 signature (RFC 8017 §9.2): `00 01 FF…FF 00`,
    /// then the DigestInfo and the hash, filling the modulus. A PIV card does only the raw private-key operation.
    public static func pkcs1SHA256Block(digest: [UInt8], modulusBytes: Int) -> [UInt8] {
        let digestInfo: [UInt8] = [0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20] + digest
        let padding = modulusBytes - digestInfo.count - 3
        precondition(digest.count == 32 && padding >= 8, "a SHA-256 digest and a modulus of at least 62 bytes")
        return [0x00, 0x01] + Array(repeating: 0xFF, count: padding) + [0x00] + digestInfo
    }
}
