import CardDeskCore
import Crypto
import _CryptoExtras
import Foundation
import Smartcard
import SwiftASN1
import X509

/// Key attestation in the YubiKey form: the card's attestation key (slot F9, certified by the card's manufacturer)
/// signs a certificate for a key generated on the card, naming the slot and carrying the card's serial number and
/// firmware version in Yubico's extensions, so that any verifier of YubiKey attestations reads it the same way.
enum PIVAttestation {
    static func certificate(
        for key: PIVCardImage.Key, slot: UInt8, serialNumber: UInt32, signer: PIVCardImage.Key, issuer issuerDER: [UInt8], version: [UInt8]
    ) throws -> [UInt8] {
        let issuer = try Certificate(derEncoded: issuerDER)
        var serial = DER.Serializer()
        try serial.serialize(Int(serialNumber))
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: (0..<16).map { _ in UInt8.random(in: 0...255) }),
            publicKey: try PIVCardKeys.publicKey(key),
            notValidBefore: issuer.notValidBefore,
            notValidAfter: issuer.notValidAfter,
            issuer: issuer.subject,
            subject: try DistinguishedName { CommonName("CardDesk virtual PIV attestation \(Hex.string([slot]).lowercased())") },
            signatureAlgorithm: signer.algorithm == PIV.KeyAlgorithm.rsa2048 ? .sha256WithRSAEncryption : .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Certificate.Extension(oid: PIV.AttestationExtension.firmware, critical: false, value: ArraySlice(version))
                Certificate.Extension(oid: PIV.AttestationExtension.serialNumber, critical: false, value: ArraySlice(serial.serializedBytes))
                // PIN policy "once per session", touch policy "never".
                Certificate.Extension(oid: PIV.AttestationExtension.policy, critical: false, value: [0x02, 0x01])
            },
            issuerPrivateKey: try privateKey(signer)
        )
        var coder = DER.Serializer()
        try coder.serialize(certificate)
        return coder.serializedBytes
    }

    static func privateKey(_ key: PIVCardImage.Key) throws -> Certificate.PrivateKey {
        switch key.algorithm {
        case PIV.KeyAlgorithm.eccP256: Certificate.PrivateKey(try P256.Signing.PrivateKey(rawRepresentation: key.privateKey))
        case PIV.KeyAlgorithm.eccP384: Certificate.PrivateKey(try P384.Signing.PrivateKey(rawRepresentation: key.privateKey))
        default: Certificate.PrivateKey(try _RSA.Signing.PrivateKey(derRepresentation: key.privateKey))
        }
    }
}
