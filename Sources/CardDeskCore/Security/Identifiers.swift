/// Checks on identifiers that arrive from outside (request bodies, paths, headers), made before anything else is
/// done with them: nothing unchecked reaches the store, the audit log or a message.
public enum Identifiers {
    /// A card serial: 4 to 40 letters, digits and hyphens (CardDesk's own `CD` + 16 hex digits, a PIV card's GUID or
    /// a YubiKey's serial number all fit).
    public static func cardSerial(_ text: String) throws -> String {
        guard (4...40).contains(text.utf8.count), text.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") }) else {
            throw CardDeskError(.invalidInput, "That is not a card serial number: it has 4 to 40 letters, digits and hyphens.")
        }
        return text
    }

    /// A request ID the server made (a lowercase UUID): renewals, unlocks, confirmations, sessions.
    public static func requestID(_ text: String) throws -> String {
        let utf8 = Array(text.utf8)
        guard utf8.count == 36, utf8.enumerated().allSatisfy({ index, byte in
            [8, 13, 18, 23].contains(index) ? byte == UInt8(ascii: "-") : isHex(byte)
        }) else {
            throw CardDeskError(.invalidInput, "That request number is not one CardDesk gave out. Start again.")
        }
        return text
    }

    /// A random token, challenge or code secret the server made (base64url, at most 128 characters).
    public static func token(_ text: String) throws -> String {
        guard (16...128).contains(text.utf8.count),
              text.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") })
        else {
            throw CardDeskError(.authenticationFailed, "That token or challenge is not one CardDesk gave out. Start again.")
        }
        return text
    }

    /// A signature from a card: RSA-4096 at most (512 bytes); an ECDSA signature is far shorter.
    public static func signature(_ bytes: [UInt8]) throws -> [UInt8] {
        guard (8...512).contains(bytes.count) else {
            throw CardDeskError(.authenticationFailed, "The card's signature is missing or too long.")
        }
        return bytes
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
