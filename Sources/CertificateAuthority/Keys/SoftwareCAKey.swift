import CardDeskCore
import Crypto
public import Foundation
public import SwiftASN1
public import X509

/// A CA signing key held in this process, decrypted from its sealed file.
///
/// Issuance code only ever sees it as swift-certificates' `CustomPrivateKey` (wrapped in `Certificate.PrivateKey`),
/// so a key in an HSM (PKCS#11) can take its place without touching issuance, CRL or OCSP code.
/// It cannot be serialised: no code path hands out CA key material.
public struct SoftwareCAKey: CustomPrivateKey {
    private let key: P256.Signing.PrivateKey

    /// Generates a new P-256 key.
    public init() {
        self.key = P256.Signing.PrivateKey()
    }

    /// Opens a key sealed under the master key.
    init(sealed: [UInt8], label: String, masterKey: MasterKey) throws(CardDeskError) {
        let raw = try masterKey.open(sealed, label: label)
        do {
            self.key = try P256.Signing.PrivateKey(rawRepresentation: raw)
        } catch {
            throw CardDeskError(.corruptDataDirectory, "The \(label) key decrypted but is not a P-256 key.")
        }
    }

    /// The key encrypted under the master key, for its file in the data directory.
    func sealed(label: String, masterKey: MasterKey) throws -> [UInt8] {
        try masterKey.seal(Array(key.rawRepresentation), label: label)
    }

    public var publicKey: Certificate.PublicKey { Certificate.PublicKey(key.publicKey) }
    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm { .ecdsaWithSHA256 }
    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] { [.ecdsaWithSHA256] }

    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        guard signatureAlgorithm == .ecdsaWithSHA256 else { throw CAError.unsupportedAlgorithm("\(signatureAlgorithm)") }
        let signature = try key.signature(for: SHA256.hash(data: bytes))
        return try Certificate.Signature(
            signatureAlgorithm: signatureAlgorithm,
            signatureBytes: ASN1BitString(bytes: ArraySlice(signature.derRepresentation))
        )
    }

    public static var defaultPEMDiscriminator: String { "CARDDESK CA KEY" }

    public func serialize(into coder: inout DER.Serializer) throws {
        throw CardDeskError(.internalFailure, "CA private keys are never exported.")
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.key.publicKey.rawRepresentation == rhs.key.publicKey.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(key.publicKey.rawRepresentation)
    }
}
