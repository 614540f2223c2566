import CardDeskCore
import Crypto
import Foundation
import Smartcard

/// What a virtual PIV card holds in its secure memory, as its file stores it. Only `VirtualPIVCard` reads it, and
/// only through APDUs does anything leave the card.
struct PIVCardImage: Codable, Sendable {
    static let format = "carddesk-virtual-piv/1"

    /// A PIN or PUK: a salted hash and its retry counter (the value itself is not kept).
    struct Secret: Codable, Sendable {
        var salt: [UInt8]
        var hash: [UInt8]
        var triesLeft: Int
        var maximumTries: Int
        /// Still the factory value (YubiKey metadata reports it).
        var isDefault: Bool

        static func make(_ value: [UInt8], tries: Int, isDefault: Bool = false) -> Secret {
            let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
            return Secret(salt: salt, hash: digest(value, salt: salt), triesLeft: tries, maximumTries: tries, isDefault: isDefault)
        }

        static func digest(_ value: [UInt8], salt: [UInt8]) -> [UInt8] {
            Array(SHA256.hash(data: salt + value))
        }

        /// Constant-time comparison of the presented value with the stored one.
        func matches(_ value: [UInt8]) -> Bool {
            ConstantTime.equal(Self.digest(value, salt: salt), hash)
        }
    }

    /// A key in one of the card's key slots.
    struct Key: Codable, Sendable {
        enum Origin: UInt8, Codable, Sendable {
            case generated = 1
            case imported = 2
        }
        /// The PIV algorithm identifier (07 RSA-2048, 11 P-256, 14 P-384).
        var algorithm: UInt8
        /// The private key in the card's own representation (EC raw scalar, RSA PKCS#1 DER).
        var privateKey: [UInt8]
        var origin: Origin
    }

    var format: String
    /// The 16-byte card identifier in the CHUID.
    var guid: [UInt8]
    /// The serial number a YubiKey reports (GET SERIAL), derived from the GUID.
    var serialNumber: UInt32
    var pin: Secret
    var puk: Secret
    var managementKey: ManagementKey
    var managementKeyIsDefault: Bool
    /// Key slots by key reference in hexadecimal ("9A", "9C", "82", "F9").
    var keys: [String: Key]
    /// Data objects by tag in hexadecimal ("5FC102", "5FC105", "5FFF01"): the contents inside the `53` wrapper.
    var objects: [String: [UInt8]]

    static func keyName(_ reference: UInt8) -> String { Hex.string([reference]) }
    static func objectName(_ tag: UInt32) -> String { String(tag, radix: 16, uppercase: true) }

    subscript(key reference: UInt8) -> Key? {
        get { keys[Self.keyName(reference)] }
        set { keys[Self.keyName(reference)] = newValue }
    }

    subscript(object tag: UInt32) -> [UInt8]? {
        get { objects[Self.objectName(tag)] }
        set { objects[Self.objectName(tag)] = newValue }
    }

    /// The total size of the stored objects: a card has a few tens of kilobytes for them.
    var objectBytes: Int { objects.values.reduce(0) { $0 + $1.count } }
    static let objectCapacity = 48 * 1024

    /// A factory-fresh card: default management key, PIN 123456, PUK 12345678, no keys, a CHUID with a new GUID.
    static func blank() -> PIVCardImage {
        var generator = SystemRandomNumberGenerator()
        let guid = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var image = PIVCardImage(
            format: format, guid: guid, serialNumber: guid.suffix(4).reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF,
            pin: .make(Array("123456".utf8), tries: 3, isDefault: true), puk: .make(Array("12345678".utf8), tries: 3, isDefault: true),
            managementKey: .factoryDefault, managementKeyIsDefault: true, keys: [:], objects: [:]
        )
        image[object: PIV.Object.chuid] = PIV.chuid(guid: guid)
        return image
    }

    static func read(_ file: URL) throws -> PIVCardImage {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw CardDeskError(.cardRemoved, "There is no card file \(file.path).")
        }
        let image: PIVCardImage
        do {
            image = try JSONDecoder().decode(PIVCardImage.self, from: data)
        } catch {
            throw CardDeskError(.corruptCard, "The card in \(file.path) cannot be read: its file is not a CardDesk virtual PIV card, or it is damaged.")
        }
        guard image.format == format else {
            throw CardDeskError(.corruptCard, "The card in \(file.path) has the format \(image.format); this CardDesk reads \(format).")
        }
        return image
    }

    func write(to file: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Mode 0600 from the first byte, then rename(2): the card holds the old state or the new one, never a mix.
        do {
            try SecretFile.write(Array(try encoder.encode(self)), to: file.path)
        } catch {
            throw CardDeskError(.corruptCard, "Cannot write to the card in \(file.path): check that its folder is writable.")
        }
    }
}
