import CardDeskCore
import Crypto
import Foundation
import Smartcard

/// What a virtual card holds in its secure memory, as stored in its file. Only `VirtualCard` reads it; nothing in
/// it ever leaves the card through the session API.
struct CardImage: Codable, Sendable {
    static let format = "carddesk-virtual-card/1"

    struct Secret: Codable, Sendable {
        var salt: [UInt8]
        var hash: [UInt8]
        var triesLeft: Int
        var maximumTries: Int

        static func make(_ value: String, tries: Int) -> Secret {
            let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
            return Secret(salt: salt, hash: digest(value, salt: salt), triesLeft: tries, maximumTries: tries)
        }

        static func digest(_ value: String, salt: [UInt8]) -> [UInt8] {
            Array(SHA256.hash(data: salt + Array(value.utf8)))
        }

        /// Constant-time comparison of the presented value with the stored one.
        func matches(_ value: String) -> Bool {
            let presented = Self.digest(value, salt: salt)
            return zip(presented, hash).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0 && presented.count == hash.count
        }
    }

    struct Slot: Codable, Sendable {
        var algorithm: CardKeyAlgorithm
        /// The private key in the card's own representation (P-256 raw scalar or RSA PKCS#1 DER).
        var privateKey: [UInt8]
        var certificate: [UInt8]?
    }

    var format: String
    var serial: String
    var pin: Secret
    var puk: Secret
    var managementKey: [UInt8]
    /// Slots by PIV key reference in hexadecimal ("9A", "9C", "82", …).
    var slots: [String: Slot]

    static func key(_ slot: CardSlot) -> String { String(slot.keyReference, radix: 16, uppercase: true) }

    subscript(slot: CardSlot) -> Slot? {
        get { slots[Self.key(slot)] }
        set { slots[Self.key(slot)] = newValue }
    }
}
