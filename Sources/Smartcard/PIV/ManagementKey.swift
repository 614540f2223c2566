public import CardDeskCore
import Crypto
import _CryptoExtras

/// The PIV card management key (key reference 9B): whoever holds it may generate keys and write objects on the card.
/// CardDesk keeps each card's key on the server, sealed; the workstation only relays the card's challenges.
public struct ManagementKey: Sendable, Hashable, Codable {
    /// SP 800-78-4 table 6-2 algorithm identifiers for the management key.
    public enum Algorithm: UInt8, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
        case tripleDES = 0x03
        case aes128 = 0x08
        case aes192 = 0x0A
        case aes256 = 0x0C

        public var keyLength: Int {
            switch self {
            case .tripleDES, .aes192: 24
            case .aes128: 16
            case .aes256: 32
            }
        }

        /// The cipher's block size: the length of the witness and challenge.
        public var blockSize: Int { self == .tripleDES ? 8 : 16 }

        public var description: String {
            switch self {
            case .tripleDES: "3DES"
            case .aes128: "AES-128"
            case .aes192: "AES-192"
            case .aes256: "AES-256"
            }
        }
    }

    public let algorithm: Algorithm
    public let bytes: [UInt8]

    public init(algorithm: Algorithm, bytes: [UInt8]) throws(CardDeskError) {
        guard bytes.count == algorithm.keyLength else {
            throw CardDeskError(.invalidInput, "A \(algorithm) management key is \(algorithm.keyLength) bytes, not \(bytes.count).")
        }
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// The well-known key every new PIV card and YubiKey ships with (3DES 0102…08 three times): a card that still
    /// has it can be administered by anyone.
    public static let factoryDefault = try! ManagementKey(
        algorithm: .tripleDES, bytes: [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8]
    )

    /// A fresh random key (for a card being enrolled).
    public static func random(_ algorithm: Algorithm) -> ManagementKey {
        var generator = SystemRandomNumberGenerator()
        return try! ManagementKey(algorithm: algorithm, bytes: (0..<algorithm.keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    public func encrypt(_ block: [UInt8]) throws(CardDeskError) -> [UInt8] { try cipher(block, decrypt: false) }
    public func decrypt(_ block: [UInt8]) throws(CardDeskError) -> [UInt8] { try cipher(block, decrypt: true) }

    private func cipher(_ block: [UInt8], decrypt: Bool) throws(CardDeskError) -> [UInt8] {
        guard block.count == algorithm.blockSize else {
            throw CardDeskError(.invalidInput, "A \(algorithm) block is \(algorithm.blockSize) bytes, not \(block.count).")
        }
        if algorithm == .tripleDES {
            return decrypt ? TripleDES.decrypt(block, key: bytes) : TripleDES.encrypt(block, key: bytes)
        }
        var out = block
        do {
            if decrypt {
                try AES.inversePermute(&out, key: SymmetricKey(data: bytes))
            } else {
                try AES.permute(&out, key: SymmetricKey(data: bytes))
            }
        } catch {
            throw CardDeskError(.internalFailure, "AES failed on a management-key block: \(error)")
        }
        return out
    }

    /// Random bytes of one block: a witness or a challenge.
    public func randomBlock() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<algorithm.blockSize).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    // Never print the key.
    public var debugDescription: String { "ManagementKey(\(algorithm))" }
}

extension ManagementKey: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { debugDescription }
}
