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
        var der = bytes
        do {
            if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
                der = try PEMDocument(pemString: text).derBytes
            }
            return try CertificateSigningRequest(derEncoded: der)
        } catch {
            // swift-crypto refuses some keys (RSA under 2048 bits) while parsing: say which key it was.
            if let key = unsupportedKeyDescription(csrDER: der) {
                throw CardDeskError(.unsupportedKey, "\(key) is not accepted: card keys must be RSA-2048 or ECDSA P-256.")
            }
            throw CardDeskError(.malformedRequest, "The certificate request could not be read: it is not a valid PKCS#10 CSR in PEM or DER (\(error)).")
        }
    }

    /// Reads just the key algorithm (and RSA modulus size) of a well-formed CSR that the library would not load.
    static func unsupportedKeyDescription(csrDER: [UInt8]) -> String? {
        let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
        let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
        return try? DER.sequence(try DER.parse(csrDER), identifier: .sequence) { request in
            guard let info = request.next() else { return nil }
            while request.next() != nil {}
            return try DER.sequence(info, identifier: .sequence) { fields -> String? in
                _ = fields.next() // version
                _ = fields.next() // subject
                guard let spki = fields.next() else { return nil }
                while fields.next() != nil {}
                return try DER.sequence(spki, identifier: .sequence) { parts -> String? in
                    guard let algorithm = parts.next(), let bits = parts.next() else { return nil }
                    let (oid, curve) = try DER.sequence(algorithm, identifier: .sequence) { nodes -> (ASN1ObjectIdentifier, ASN1ObjectIdentifier?) in
                        let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
                        let parameters = nodes.next()
                        while nodes.next() != nil {}
                        return (oid, try parameters.flatMap { $0.identifier == .objectIdentifier ? try ASN1ObjectIdentifier(derEncoded: $0) : nil })
                    }
                    switch oid {
                    case rsaEncryption:
                        let key = try DER.parse(Array(try ASN1BitString(derEncoded: bits).bytes))
                        let modulus = try DER.sequence(key, identifier: .sequence) { nodes -> ArraySlice<UInt8> in
                            let modulus = try ArraySlice<UInt8>(derEncoded: &nodes)
                            while nodes.next() != nil {}
                            return modulus
                        }
                        let trimmed = modulus.drop { $0 == 0 }
                        let size = trimmed.isEmpty ? 0 : trimmed.count * 8 - trimmed.first!.leadingZeroBitCount
                        // A 2048-bit key that did not load is damaged, not unsupported.
                        return size == 2048 ? nil : "An RSA-\(size) key"
                    case ecPublicKey:
                        return curve == [1, 2, 840, 10045, 3, 1, 7] ? nil : "An elliptic-curve key on a curve other than P-256"
                    default:
                        return "A key of type \(oid)"
                    }
                }
            }
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
