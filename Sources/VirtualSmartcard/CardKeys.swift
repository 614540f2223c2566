import CardDeskCore
import Smartcard
import Crypto
import _CryptoExtras
import SwiftASN1
import X509

/// Key generation and signing inside the virtual card.
enum CardKeys {
    static func generate(_ algorithm: CardKeyAlgorithm) throws -> (privateKey: [UInt8], publicKey: Certificate.PublicKey) {
        switch algorithm {
        case .p256:
            let key = P256.Signing.PrivateKey()
            return (Array(key.rawRepresentation), Certificate.PublicKey(key.publicKey))
        case .rsa2048:
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            return (Array(key.derRepresentation), Certificate.PublicKey(key.publicKey))
        }
    }

    static func publicKey(of slot: CardImage.Slot) throws -> Certificate.PublicKey {
        switch slot.algorithm {
        case .p256: Certificate.PublicKey(try P256.Signing.PrivateKey(rawRepresentation: slot.privateKey).publicKey)
        case .rsa2048: Certificate.PublicKey(try _RSA.Signing.PrivateKey(derRepresentation: slot.privateKey).publicKey)
        }
    }

    static func sign(_ data: [UInt8], with slot: CardImage.Slot) throws -> Certificate.Signature {
        switch slot.algorithm {
        case .p256:
            let signature = try P256.Signing.PrivateKey(rawRepresentation: slot.privateKey).signature(for: SHA256.hash(data: data))
            return try Certificate.Signature(signatureAlgorithm: .ecdsaWithSHA256, signatureBytes: ASN1BitString(bytes: ArraySlice(signature.derRepresentation)))
        case .rsa2048:
            let signature = try _RSA.Signing.PrivateKey(derRepresentation: slot.privateKey).signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
            return try Certificate.Signature(signatureAlgorithm: .sha256WithRSAEncryption, signatureBytes: ASN1BitString(bytes: ArraySlice(signature.rawRepresentation)))
        }
    }
}
