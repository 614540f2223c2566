/// DES and three-key Triple DES (EDE), one 8-byte block at a time: the cipher of the PIV management key that every
/// card before YubiKey 5.7 uses by default (SP 800-78-4, algorithm 03). swift-crypto does not offer DES, so it is
/// written out here from FIPS 46-3; the tests check it against published vectors and against OpenSSL.
/// Only the management-key witness exchange uses it (single blocks, no mode of operation).
enum TripleDES {
    /// Encrypts one block with a 24-byte key K1‖K2‖K3: E(K3, D(K2, E(K1, block))).
    static func encrypt(_ block: [UInt8], key: [UInt8]) -> [UInt8] {
        let (k1, k2, k3) = keys(key)
        let x = DES.process(DES.process(DES.process(load(block), k1, decrypt: false), k2, decrypt: true), k3, decrypt: false)
        return store(x)
    }

    /// Decrypts one block: D(K1, E(K2, D(K3, block))).
    static func decrypt(_ block: [UInt8], key: [UInt8]) -> [UInt8] {
        let (k1, k2, k3) = keys(key)
        let x = DES.process(DES.process(DES.process(load(block), k3, decrypt: true), k2, decrypt: false), k1, decrypt: true)
        return store(x)
    }

    private static func keys(_ key: [UInt8]) -> ([UInt64], [UInt64], [UInt64]) {
        precondition(key.count == 24, "a Triple DES key is 24 bytes")
        return (DES.subkeys(load(Array(key[0..<8]))), DES.subkeys(load(Array(key[8..<16]))), DES.subkeys(load(Array(key[16..<24]))))
    }

    static func load(_ bytes: [UInt8]) -> UInt64 {
        precondition(bytes.count == 8, "a DES block is 8 bytes")
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func store(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }
}

/// Single DES (FIPS 46-3) on 64-bit integers, bits numbered 1…64 from the most significant as in the standard.
enum DES {
    static func process(_ block: UInt64, _ subkeys: [UInt64], decrypt: Bool) -> UInt64 {
        let ip = permute(block, width: 64, initialPermutation)
        var left = ip >> 32
        var right = ip & 0xFFFF_FFFF
        for round in 0..<16 {
            let key = subkeys[decrypt ? 15 - round : round]
            (left, right) = (right, left ^ feistel(right, key))
        }
        return permute(right << 32 | left, width: 64, finalPermutation)
    }

    static func subkeys(_ key: UInt64) -> [UInt64] {
        let permuted = permute(key, width: 64, permutedChoice1)
        var c = permuted >> 28
        var d = permuted & 0x0FFF_FFFF
        return shifts.map { shift in
            c = (c << shift | c >> (28 - shift)) & 0x0FFF_FFFF
            d = (d << shift | d >> (28 - shift)) & 0x0FFF_FFFF
            return permute(c << 28 | d, width: 56, permutedChoice2)
        }
    }

    static func feistel(_ half: UInt64, _ key: UInt64) -> UInt64 {
        let mixed = permute(half, width: 32, expansion) ^ key
        var out: UInt64 = 0
        for box in 0..<8 {
            let six = Int((mixed >> (42 - 6 * box)) & 0x3F)
            let row = (six & 0x20) >> 4 | (six & 1)
            let column = (six >> 1) & 0x0F
            out = out << 4 | UInt64(sBoxes[box][row * 16 + column])
        }
        return permute(out, width: 32, permutation)
    }

    static func permute(_ input: UInt64, width: Int, _ table: [UInt8]) -> UInt64 {
        table.reduce(0) { $0 << 1 | (input >> (width - Int($1))) & 1 }
    }

    static let initialPermutation: [UInt8] = [
        58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
        57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
    ]
    static let finalPermutation: [UInt8] = [
        40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
        36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27, 34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
    ]
    static let expansion: [UInt8] = [
        32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
        16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
    ]
    static let permutation: [UInt8] = [
        16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
    ]
    static let permutedChoice1: [UInt8] = [
        57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
        63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
    ]
    static let permutedChoice2: [UInt8] = [
        14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
        41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
    ]
    static let shifts: [UInt64] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1]
    static let sBoxes: [[UInt8]] = [
        [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
         4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
        [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
         0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
        [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
         13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
        [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
         10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
        [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
         4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
        [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
         9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
        [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
         1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
        [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
         7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
    ]
}
