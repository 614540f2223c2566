import CardDeskCore
import Crypto
public import Foundation
import Smartcard
import SwiftASN1
public import X509

/// The maker of virtual PIV cards, as Yubico is of YubiKeys: a CA whose key certifies each new card's attestation
/// key (slot F9), so that a CardDesk server that trusts this CA's certificate can tell a key generated on a
/// CardDesk virtual card from a key made anywhere else.
///
/// It is a folder: `manufacturer-ca.pem` (the certificate a server trusts) and `manufacturer-ca.key` (mode 0600).
/// Whoever holds the key can make virtual cards the server accepts as attested: it is a demo and training factory,
/// for deployments that use virtual cards. A deployment with real cards trusts its card vendors' roots instead.
public struct VirtualCardManufacturer: Sendable {
    public let folder: URL
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    static let certificateName = "manufacturer-ca.pem"
    static let keyName = "manufacturer-ca.key"

    /// Opens the manufacturer in `folder`, making it first when the folder holds none.
    public static func open(folder: URL) throws -> VirtualCardManufacturer {
        let certificateFile = folder.appendingPathComponent(certificateName), keyFile = folder.appendingPathComponent(keyName)
        if !FileManager.default.fileExists(atPath: certificateFile.path) {
            try SecretFile.createDirectory(folder.path)
            let key = P256.Signing.PrivateKey()
            let name = try DistinguishedName {
                OrganizationName("CardDesk")
                CommonName("CardDesk Virtual Card Manufacturer CA")
            }
            let now = Date()
            let certificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(30 * 365.25 * 86_400),
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                    Critical(KeyUsage(keyCertSign: true))
                    SubjectKeyIdentifier(hash: .init(key.publicKey))
                },
                issuerPrivateKey: .init(key)
            )
            try SecretFile.write(Array(key.pemRepresentation.utf8), to: keyFile.path)
            try SecretFile.write(Array(try certificate.serializeAsPEM().pemString.utf8), to: certificateFile.path, mode: 0o644)
        }
        do {
            let certificate = try Certificate(pemEncoded: String(contentsOf: certificateFile, encoding: .utf8))
            let key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOf: keyFile, encoding: .utf8))
            guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
                throw CardDeskError(.configuration, "The key and certificate in \(folder.path) do not match.")
            }
            return VirtualCardManufacturer(folder: folder, certificate: certificate, key: key)
        } catch let error as CardDeskError {
            throw error
        } catch {
            throw CardDeskError(.configuration, "The virtual-card manufacturer in \(folder.path) cannot be read (\(error)).")
        }
    }

    /// A new card's attestation key and the certificate for it.
    func attestationKey(serialNumber: UInt32) throws -> (key: PIVCardImage.Key, certificate: [UInt8]) {
        let key = P256.Signing.PrivateKey()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: certificate.notValidBefore, notValidAfter: certificate.notValidAfter,
            issuer: certificate.subject,
            subject: try DistinguishedName {
                OrganizationName("CardDesk")
                CommonName("CardDesk virtual PIV card \(serialNumber) attestation")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true))
                try AuthorityKeyIdentifier(keyIdentifier: ArraySlice(SubjectKeyIdentifier(hash: self.certificate.publicKey).keyIdentifier))
            },
            issuerPrivateKey: .init(self.key)
        )
        var coder = DER.Serializer()
        try coder.serialize(certificate)
        return (.init(algorithm: PIV.KeyAlgorithm.eccP256, privateKey: Array(key.rawRepresentation), origin: .generated), coder.serializedBytes)
    }
}
