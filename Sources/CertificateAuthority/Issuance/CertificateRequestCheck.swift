public import CardDeskCore
import Crypto
import _CryptoExtras
import SwiftASN1
public import X509

/// The checks a CSR must pass before anything is signed: it parses, it proves possession of its key,
/// and the key is one a card may hold (RSA-2048 or ECDSA P-256).
public enum CertificateRequestCheck {
    /// Reads a PKCS#10 request from PEM text or raw DER.
    public static func parse(_ bytes: [UInt8]) throws(CardDeskError) -> CertificateSigningRequest {
        do {
            if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
                return try CertificateSigningRequest(pemEncoded: text)
            }
            return try CertificateSigningRequest(derEncoded: bytes)
        } catch {
            throw CardDeskError(.malformedRequest, "The certificate request could not be read: it is not a valid PKCS#10 CSR in PEM or DER (\(error)).")
        }
    }

    /// Describes a card key, or refuses it with the reason.
    public static func checkKey(_ key: Certificate.PublicKey) throws(CardDeskError) -> String {
        if let rsa = _RSA.Signing.PublicKey(key) {
            guard rsa.keySizeInBits == 2048 else {
                throw CardDeskError(.unsupportedKey, "An RSA-\(rsa.keySizeInBits) key is not accepted: card keys must be RSA-2048 or ECDSA P-256.")
            }
            return "RSA-2048"
        }
        if P256.Signing.PublicKey(key) != nil { return "ECDSA P-256" }
        throw CardDeskError(.unsupportedKey, "A \(key) key is not accepted: card keys must be RSA-2048 or ECDSA P-256.")
    }

    /// Proof of possession: the request is signed by the private key of the public key it carries.
    public static func checkProofOfPossession(_ csr: CertificateSigningRequest) throws(CardDeskError) {
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw CardDeskError(.badProofOfPossession, "The certificate request's signature does not match its public key: it was not signed by the key it asks a certificate for.")
        }
    }
}
