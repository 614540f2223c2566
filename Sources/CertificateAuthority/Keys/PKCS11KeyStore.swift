public import CardDeskCore
import CPKCS11
import Crypto
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
    public let curve: PKCS11KeyKind.Curve

    /// - Parameters:
    ///   - pin: the tokens' user PIN, read from a file or the environment by the caller (never the command line).
    public init(module path: String, tokenLabel: String, pin: String, rootTokenLabel: String? = nil, curve: PKCS11KeyKind.Curve = .p256) throws(CardDeskError) {
        let module = try PKCS11Module.load(path: path)
        self.token = PKCS11Token(module: module, label: tokenLabel, pin: pin)
        self.rootToken = rootTokenLabel.map { PKCS11Token(module: module, label: $0, pin: pin) } ?? token
        self.curve = curve
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
        let curve: String
    }

    public func generate(_ role: CAKeyRole, in directory: URL) throws -> Certificate.PrivateKey {
        let token = token(for: role)
        let id = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let label = "CardDesk \(role)"
        let key = try token.withSession { session throws(CardDeskError) in
            let (publicKey, _) = try session.generateKeyPair(.ec(curve), label: label, id: id)
            return try PKCS11CAKey(token: token, id: id, curve: curve, publicKey: try Self.publicKey(publicKey, curve: curve, in: session))
        }
        let reference = Reference(token: token.label, id: Hex.string(id).lowercased(), label: label, curve: curve.rawValue)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try SecretFile.write(Array(try encoder.encode(reference)), to: directory.appendingPathComponent(keyFile(role)).path, mode: 0o644)
        return Certificate.PrivateKey(key)
    }

    public func open(_ role: CAKeyRole, in directory: URL) throws -> Certificate.PrivateKey {
        let url = directory.appendingPathComponent(keyFile(role))
        guard let data = FileManager.default.contents(atPath: url.path), let reference = try? JSONDecoder().decode(Reference.self, from: data),
              let curve = PKCS11KeyKind.Curve(rawValue: reference.curve), let id = Hex.bytes(reference.id) else {
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
            return try PKCS11CAKey(token: token, id: id, curve: curve, publicKey: try Self.publicKey(publicKey, curve: curve, in: session))
        }
        return Certificate.PrivateKey(key)
    }

    /// The public key object's point (`CKA_EC_POINT`, a DER OCTET STRING holding the X9.63 point).
    static func publicKey(_ object: CK_OBJECT_HANDLE, curve: PKCS11KeyKind.Curve, in session: PKCS11Session) throws(CardDeskError) -> Certificate.PublicKey {
        guard let encoded = try session.attribute(CK_ATTRIBUTE_TYPE(CKA_EC_POINT), of: object) else {
            throw CardDeskError(.internalFailure, "The token did not give the public key's point.")
        }
        var point = encoded
        if let octets = try? ASN1OctetString(derEncoded: encoded) { point = Array(octets.bytes) }
        do {
            switch curve {
            case .p256: return Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: point))
            case .p384: return Certificate.PublicKey(try P384.Signing.PublicKey(x963Representation: point))
            }
        } catch {
            throw CardDeskError(.internalFailure, "The token's public key is not a \(curve.rawValue) point.")
        }
    }

}

/// A CA key inside a token: every signature is one `C_Sign` on a pooled session. The hash is made here and the token
/// signs it (`CKM_ECDSA`, whose r‖s answer becomes the DER ECDSA-Sig-Value X.509 wants).
public struct PKCS11CAKey: CustomPrivateKey {
    let token: PKCS11Token
    let id: [UInt8]
    let curve: PKCS11KeyKind.Curve
    public let publicKey: Certificate.PublicKey

    init(token: PKCS11Token, id: [UInt8], curve: PKCS11KeyKind.Curve, publicKey: Certificate.PublicKey) throws(CardDeskError) {
        self.token = token
        self.id = id
        self.curve = curve
        self.publicKey = publicKey
    }

    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm {
        curve == .p256 ? .ecdsaWithSHA256 : .ecdsaWithSHA384
    }

    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] { [defaultSignatureAlgorithm] }

    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        guard signatureAlgorithm == defaultSignatureAlgorithm else { throw CAError.unsupportedAlgorithm("\(signatureAlgorithm)") }
        let digest: [UInt8] = curve == .p256 ? Array(SHA256.hash(data: bytes)) : Array(SHA384.hash(data: bytes))
        let raw = try token.withSession { session throws(CardDeskError) in
            try session.sign(digest, with: try token.privateKey(id: id, in: session), mechanism: CK_MECHANISM_TYPE(CKM_ECDSA))
        }
        let der: [UInt8]
        do {
            der = curve == .p256
                ? Array(try P256.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
                : Array(try P384.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
        } catch {
            throw CardDeskError(.internalFailure, "The HSM's signature is not an ECDSA \(curve.rawValue) signature.")
        }
        return try Certificate.Signature(signatureAlgorithm: signatureAlgorithm, signatureBytes: ASN1BitString(bytes: ArraySlice(der)))
    }

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
