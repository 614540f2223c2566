public import CardDeskCore
import CPKCS11
import Crypto
import _CryptoExtras
public import Foundation
public import PKCS11
public import SwiftASN1
public import X509

/// CA keys in an HSM, through its PKCS#11 module: generated inside the token (sensitive, never extractable), used
/// through `C_Sign`. `pki/<ca>.key.pkcs11` records which token and which key (`CKA_ID`); no key material leaves the
/// token. The root CA's key may live in a token of its own (`rootToken`), which needs to be present only for the
/// ceremony.
public struct PKCS11KeyStore: CAKeyStore {
    public let token: PKCS11Token
    public let rootToken: PKCS11Token
    /// The type of the keys the ceremony makes (an existing key's type is read from its reference).
    public let keyType: CAKeyType

    /// - Parameters:
    ///   - pin: the tokens' user PIN, read from a file or the environment by the caller (never the command line).
    public init(module path: String, tokenLabel: String, pin: String, rootTokenLabel: String? = nil, keyType: CAKeyType = .p256) throws(CardDeskError) {
        let module = try PKCS11Module.load(path: path)
        self.token = PKCS11Token(module: module, label: tokenLabel, pin: pin)
        self.rootToken = rootTokenLabel.map { PKCS11Token(module: module, label: $0, pin: pin) } ?? token
        self.keyType = keyType
    }

    public var description: String { "PKCS#11 token \"\(token.label)\" (\(token.module.path))" }

    public func keyFile(_ role: CAKeyRole) -> String { "\(role.fileStem).key.pkcs11" }

    public func location(of role: CAKeyRole) -> String {
        "PKCS#11 token \"\(token(for: role).label)\" (\(token.module.path))"
    }

    func token(for role: CAKeyRole) -> PKCS11Token { role == .root ? rootToken : token }

    /// Where a key is: its token and `CKA_ID`, as written in `pki/`.
    struct Reference: Codable {
        let token: String
        let id: String
        let label: String
        let type: String
    }

    public func generate(_ role: CAKeyRole, in directory: URL) throws -> Certificate.PrivateKey {
        let token = token(for: role)
        let id = SecureRandom.bytes(16)
        let label = "CardDesk \(role)"
        let type = keyType
        let key = try token.withSession { session throws(CardDeskError) in
            let (publicKey, _) = try session.generateKeyPair(type.kind, label: label, id: id)
            return PKCS11CAKey(token: token, id: id, type: type, publicKey: try Self.publicKey(publicKey, type: type, in: session))
        }
        let reference = Reference(token: token.label, id: Hex.string(id, lowercase: true), label: label, type: type.rawValue)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try SecretFile.write(Array(try encoder.encode(reference)), to: directory.appendingPathComponent(keyFile(role)).path, mode: 0o644)
        return Certificate.PrivateKey(key)
    }

    public func open(_ role: CAKeyRole, in directory: URL) throws -> Certificate.PrivateKey {
        let url = directory.appendingPathComponent(keyFile(role))
        guard let data = FileManager.default.contents(atPath: url.path), let reference = try? JSONDecoder().decode(Reference.self, from: data),
              let type = CAKeyType(rawValue: reference.type), let id = Hex.bytes(reference.id) else {
            throw CardDeskError(.corruptDataDirectory, "The data directory is damaged: \(url.path) is missing or unreadable.")
        }
        let token = token(for: role)
        guard reference.token == token.label else {
            throw CardDeskError(.configuration, "The \(role) key of this data directory is in the token \"\(reference.token)\", but the configured token is \"\(token.label)\".")
        }
        let key = try token.withSession { session throws(CardDeskError) in
            _ = try token.privateKey(id: id, in: session)
            guard let publicKey = try token.publicKey(id: id, in: session) else {
                throw CardDeskError(.configuration, "The token \"\(token.label)\" has no public key with ID \(reference.id) for the \(role).")
            }
            return PKCS11CAKey(token: token, id: id, type: type, publicKey: try Self.publicKey(publicKey, type: type, in: session))
        }
        return Certificate.PrivateKey(key)
    }

    /// The public key object as X.509 sees it: an EC point (`CKA_EC_POINT`, a DER OCTET STRING holding the X9.63
    /// point), or an RSA modulus and exponent.
    static func publicKey(_ object: CK_OBJECT_HANDLE, type: CAKeyType, in session: PKCS11Session) throws(CardDeskError) -> Certificate.PublicKey {
        do {
            switch type {
            case .p256, .p384:
                guard let encoded = try session.attribute(CK_ATTRIBUTE_TYPE(CKA_EC_POINT), of: object) else {
                    throw CardDeskError(.internalFailure, "The token did not give the public key's point.")
                }
                var point = encoded
                if let octets = try? ASN1OctetString(derEncoded: encoded) { point = Array(octets.bytes) }
                return type == .p256
                    ? Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: point))
                    : Certificate.PublicKey(try P384.Signing.PublicKey(x963Representation: point))
            case .rsa2048, .rsa3072:
                guard let modulus = try session.attribute(CK_ATTRIBUTE_TYPE(CKA_MODULUS), of: object),
                      let exponent = try session.attribute(CK_ATTRIBUTE_TYPE(CKA_PUBLIC_EXPONENT), of: object) else {
                    throw CardDeskError(.internalFailure, "The token did not give the RSA public key.")
                }
                // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (positive: a leading zero when needed).
                func positive(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
                    let trimmed = bytes.drop { $0 == 0 }
                    return ArraySlice((trimmed.first ?? 0) & 0x80 != 0 ? [0] + trimmed : Array(trimmed))
                }
                var coder = DER.Serializer()
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.serialize(positive(modulus))
                    try coder.serialize(positive(exponent))
                }
                return Certificate.PublicKey(try _RSA.Signing.PublicKey(derRepresentation: coder.serializedBytes))
            }
        } catch let error as CardDeskError {
            throw error
        } catch {
            throw CardDeskError(.internalFailure, "The token's public key is not a \(type.rawValue) key: \(error)")
        }
    }
}

/// The key types the ceremony can make in a token.
public enum CAKeyType: String, Sendable, CaseIterable {
    case p256, p384, rsa2048, rsa3072

    var kind: PKCS11KeyKind {
        switch self {
        case .p256: .ec(.p256)
        case .p384: .ec(.p384)
        case .rsa2048: .rsa(bits: 2048)
        case .rsa3072: .rsa(bits: 3072)
        }
    }

    var signatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self {
        case .p256: .ecdsaWithSHA256
        case .p384: .ecdsaWithSHA384
        case .rsa2048, .rsa3072: .sha256WithRSAEncryption
        }
    }
}

/// A CA key inside a token: every signature is one `C_Sign` on a pooled session. For ECDSA the hash is made here and
/// the token signs it (`CKM_ECDSA`, whose r‖s answer becomes the DER ECDSA-Sig-Value X.509 wants); for RSA the token
/// hashes and pads (`CKM_SHA256_RSA_PKCS`, PKCS#1 v1.5).
public struct PKCS11CAKey: CustomPrivateKey {
    let token: PKCS11Token
    let id: [UInt8]
    let type: CAKeyType
    public let publicKey: Certificate.PublicKey

    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm { type.signatureAlgorithm }

    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] { [defaultSignatureAlgorithm] }

    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        guard signatureAlgorithm == defaultSignatureAlgorithm else { throw CAError.unsupportedAlgorithm("\(signatureAlgorithm)") }
        let (input, mechanism): ([UInt8], CK_MECHANISM_TYPE) = switch type {
        case .p256: (Array(SHA256.hash(data: bytes)), CK_MECHANISM_TYPE(CKM_ECDSA))
        case .p384: (Array(SHA384.hash(data: bytes)), CK_MECHANISM_TYPE(CKM_ECDSA))
        case .rsa2048, .rsa3072: (Array(bytes), CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS))
        }
        let raw = try token.withSession { session throws(CardDeskError) in
            try session.sign(input, with: try token.privateKey(id: id, in: session), mechanism: mechanism)
        }
        let signature: [UInt8]
        do {
            switch type {
            case .p256: signature = Array(try P256.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
            case .p384: signature = Array(try P384.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
            case .rsa2048, .rsa3072: signature = raw
            }
        } catch {
            throw CardDeskError(.internalFailure, "The HSM's signature is not a \(type.rawValue) signature.")
        }
        return try Certificate.Signature(signatureAlgorithm: signatureAlgorithm, signatureBytes: ASN1BitString(bytes: ArraySlice(signature)))
    }

    /// The HSM call blocks its thread for as long as the HSM takes (a network HSM: milliseconds): it runs on
    /// Dispatch's threads, which grow when blocked, not on Swift's cooperative pool, which has one thread per core and
    /// would stall every other request meanwhile.
    public func signAsynchronously(bytes: some DataProtocol & Sendable, signatureAlgorithm: Certificate.SignatureAlgorithm) async throws -> Certificate.Signature {
        let data = Array(bytes)
        return try await withCheckedThrowingContinuation { continuation in
            Self.signing.async {
                continuation.resume(with: Result { try self.signSynchronously(bytes: data, signatureAlgorithm: signatureAlgorithm) })
            }
        }
    }

    private static let signing = DispatchQueue(label: "carddesk.pkcs11.sign", attributes: .concurrent)

    public static var defaultPEMDiscriminator: String { "CARDDESK HSM KEY" }

    public func serialize(into coder: inout DER.Serializer) throws {
        throw CardDeskError(.internalFailure, "CA private keys are never exported.")
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.token.label == rhs.token.label && lhs.id == rhs.id
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(token.label)
        hasher.combine(id)
    }
}
