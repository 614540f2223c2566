import CardDeskCore
import Crypto
import _CryptoExtras
import Smartcard
import SwiftASN1
import X509

/// The key work inside the virtual PIV card: generation, the raw private-key operations GENERAL AUTHENTICATE asks
/// for (ECDSA over a hash the host computed, RSA on a block the host padded, ECDH), and the public key in the
/// `7F49` form GENERATE answers with.
enum PIVCardKeys {
    struct Refusal: Error {
        let status: StatusWord
    }

    static func generate(_ algorithm: UInt8) throws(Refusal) -> PIVCardImage.Key {
        switch algorithm {
        case PIV.KeyAlgorithm.eccP256:
            return .init(algorithm: algorithm, privateKey: Array(P256.Signing.PrivateKey().rawRepresentation), origin: .generated)
        case PIV.KeyAlgorithm.eccP384:
            return .init(algorithm: algorithm, privateKey: Array(P384.Signing.PrivateKey().rawRepresentation), origin: .generated)
        case PIV.KeyAlgorithm.rsa2048:
            guard let key = try? _RSA.Signing.PrivateKey(keySize: .bits2048) else { throw Refusal(status: .memoryFailure) }
            return .init(algorithm: algorithm, privateKey: Array(key.derRepresentation), origin: .generated)
        default:
            // RSA-1024 and anything else: not offered (SP 800-78-4 retired RSA-1024 for PIV).
            throw Refusal(status: .wrongData)
        }
    }

    /// The public key as GENERATE returns it: `7F49 { 86 04‖X‖Y }` for EC, `7F49 { 81 n, 82 e }` for RSA.
    static func publicKeyTemplate(_ key: PIVCardImage.Key) throws -> [UInt8] {
        switch key.algorithm {
        case PIV.KeyAlgorithm.eccP256:
            let point = try P256.Signing.PrivateKey(rawRepresentation: key.privateKey).publicKey.x963Representation
            return TLV.encode(0x7F49, TLV.encode(0x86, Array(point)))
        case PIV.KeyAlgorithm.eccP384:
            let point = try P384.Signing.PrivateKey(rawRepresentation: key.privateKey).publicKey.x963Representation
            return TLV.encode(0x7F49, TLV.encode(0x86, Array(point)))
        default:
            let primitives = try _RSA.Signing.PrivateKey(derRepresentation: key.privateKey).publicKey.getKeyPrimitives()
            return TLV.encode(0x7F49, TLV.encode(0x81, Array(primitives.modulus)) + TLV.encode(0x82, Array(primitives.publicExponent)))
        }
    }

    static func publicKey(_ key: PIVCardImage.Key) throws -> Certificate.PublicKey {
        switch key.algorithm {
        case PIV.KeyAlgorithm.eccP256: Certificate.PublicKey(try P256.Signing.PrivateKey(rawRepresentation: key.privateKey).publicKey)
        case PIV.KeyAlgorithm.eccP384: Certificate.PublicKey(try P384.Signing.PrivateKey(rawRepresentation: key.privateKey).publicKey)
        default: Certificate.PublicKey(try _RSA.Signing.PrivateKey(derRepresentation: key.privateKey).publicKey)
        }
    }

    /// GENERAL AUTHENTICATE with tag 81: ECDSA over the given hash (DER signature), or the raw RSA private operation
    /// on a block the host has already padded.
    static func sign(_ input: [UInt8], with key: PIVCardImage.Key) throws(Refusal) -> [UInt8] {
        do {
            switch key.algorithm {
            case PIV.KeyAlgorithm.eccP256:
                let digest = RawDigest<Bytes32>(fitting: input)
                return Array(try P256.Signing.PrivateKey(rawRepresentation: key.privateKey).signature(for: digest).derRepresentation)
            case PIV.KeyAlgorithm.eccP384:
                let digest = RawDigest<Bytes48>(fitting: input)
                return Array(try P384.Signing.PrivateKey(rawRepresentation: key.privateKey).signature(for: digest).derRepresentation)
            default:
                let rsa = try _RSA.BlindSigning.PrivateKey(derRepresentation: key.privateKey, parameters: .RSABSSA_SHA384_PSS_Deterministic)
                guard input.count == rsa.keySizeInBits / 8 else { throw Refusal(status: .wrongLength) }
                return Array(try rsa.blindSignature(for: input).rawRepresentation)
            }
        } catch let refusal as Refusal {
            throw refusal
        } catch {
            // A block not below the modulus, or a key the card cannot load.
            throw Refusal(status: .wrongData)
        }
    }

    /// GENERAL AUTHENTICATE with tag 85: ECDH with the peer's uncompressed point; the shared secret's x coordinate.
    static func agree(_ peer: [UInt8], with key: PIVCardImage.Key) throws(Refusal) -> [UInt8] {
        do {
            switch key.algorithm {
            case PIV.KeyAlgorithm.eccP256:
                let mine = try P256.KeyAgreement.PrivateKey(rawRepresentation: key.privateKey)
                let secret = try mine.sharedSecretFromKeyAgreement(with: P256.KeyAgreement.PublicKey(x963Representation: peer))
                return secret.withUnsafeBytes { Array($0) }
            case PIV.KeyAlgorithm.eccP384:
                let mine = try P384.KeyAgreement.PrivateKey(rawRepresentation: key.privateKey)
                let secret = try mine.sharedSecretFromKeyAgreement(with: P384.KeyAgreement.PublicKey(x963Representation: peer))
                return secret.withUnsafeBytes { Array($0) }
            default:
                throw Refusal(status: .incorrectP1P2)
            }
        } catch let refusal as Refusal {
            throw refusal
        } catch {
            throw Refusal(status: .wrongData)
        }
    }
}

/// A hash computed by the host, handed to swift-crypto's ECDSA as its `Digest`. ECDSA uses the leftmost bits of the
/// hash up to the curve's size: longer input is cut, shorter is taken as the same integer (zeros in front).
struct RawDigest<Size: DigestSize>: Digest {
    static var byteCount: Int { Size.byteCount }
    let bytes: [UInt8]

    init(fitting input: [UInt8]) {
        bytes = input.count >= Self.byteCount ? Array(input.prefix(Self.byteCount)) : Array(repeating: 0, count: Self.byteCount - input.count) + input
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try bytes.withUnsafeBytes(body) }
    func makeIterator() -> IndexingIterator<[UInt8]> { bytes.makeIterator() }
    var description: String { "RawDigest(\(Self.byteCount) bytes)" }
}

protocol DigestSize: Sendable { static var byteCount: Int { get } }
/// P-256's size.
enum Bytes32: DigestSize { static let byteCount = 32 }
/// P-384's size.
enum Bytes48: DigestSize { static let byteCount = 48 }
