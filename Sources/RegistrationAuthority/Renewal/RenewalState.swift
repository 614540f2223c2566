public import CardDeskAPI
public import CardDeskCore
import Foundation

/// A renewal's progress, one item per certificate on the card. Stored after every step, so an interrupted renewal
/// continues from where it stopped.
///
/// The card's key pairs are renewed one at a time, signing (9C) first and then authentication (9A), so that at every
/// moment one of the two pairs is valid and matches its key, and vouches for the card when an interrupted renewal
/// resumes. For each certificate: pending → keyAuthorised (the server answered the card's management-key witness so
/// the card could generate the slot's new key) → issued (the CA issued a certificate for that key) →
/// writeAuthorised (the server answered the witness again, to write it, after a card reset) → done (the card proved
/// it signs with the new key; the old certificate is revoked, superseded). One answer serves a card session: it moves
/// every item not done on (the card stays administered until it is reset), and the order holds at issuance.
public struct RenewalState: Codable, Hashable, Sendable {
    public typealias Step = RenewalStep

    public struct Item: Codable, Hashable, Sendable {
        public let profile: CertificateProfileKind
        public var step: Step
        /// The certificate being replaced.
        public let oldSerial: SerialNumber
        /// The replacement, once issued (the certificate itself is in the store's certificates, by this serial).
        public var newSerial: SerialNumber?

        init(profile: CertificateProfileKind, step: Step, oldSerial: SerialNumber, newSerial: SerialNumber? = nil) {
            self.profile = profile
            self.step = step
            self.oldSerial = oldSerial
            self.newSerial = newSerial
        }

        // States written by earlier versions also hold the new certificate (`newCertificate`, as base64 text or,
        // earlier still, an array of numbers): it is in the store's certificates by its serial, so it is not read.
    }

    public var items: [Item]

    /// The order slots are renewed in: the signing pair first, while the authentication pair (which signs the card in)
    /// stays valid; then the authentication pair, while the renewed signing pair vouches for the card.
    public static let order: [CertificateProfileKind] = [.signing, .authentication]

    public var isDone: Bool { items.allSatisfy { $0.step == .done } }

    /// The card's management-key witness was answered: the card stays administered for the rest of its session, so
    /// every item not done may go on (a key to generate, or an issued certificate to write). Describes the steps.
    mutating func administrationAnswered() -> String {
        for index in items.indices {
            switch items[index].step {
            case .pending: items[index].step = .keyAuthorised
            case .issued: items[index].step = .writeAuthorised
            default: break
            }
        }
        return items.filter { $0.step != .done }.map { "\($0.profile) \($0.step.rawValue)" }.joined(separator: ", ")
    }

    func index(of profile: CertificateProfileKind) throws -> Int {
        guard let index = items.firstIndex(where: { $0.profile == profile }) else {
            throw CardDeskError(.invalidInput, "This renewal has no \(profile) certificate.")
        }
        return index
    }
}

// MARK: Stored form

extension RenewalState {
    /// The state as the store keeps it: the JSON of `Codable` (which every version reads), written directly, since a
    /// renewal stores its state at every step and reads it at every request:
    /// `{"items":[{"profile":"signing","step":"issued","oldSerial":"0A…","newSerial":"0B…"},…]}`.
    /// Its values are enum names and upper-case hexadecimal, which JSON needs no escaping for.
    public var stored: String {
        var text = #"{"items":["#
        for (position, item) in items.enumerated() {
            if position > 0 { text += "," }
            text += #"{"profile":""# + item.profile.rawValue + #"","step":""# + item.step.rawValue + #"","oldSerial":""# + item.oldSerial.hex + "\""
            if let newSerial = item.newSerial { text += #","newSerial":""# + newSerial.hex + "\"" }
            text += "}"
        }
        return text + "]}"
    }

    /// Reads a stored state: the form `stored` writes directly; any other JSON (states written by earlier versions,
    /// with the new certificate in them) through `JSONDecoder`.
    public init(stored text: String) throws {
        if let state = Self.parseStored(text) {
            self = state
        } else {
            self = try JSONDecoder().decode(RenewalState.self, from: Data(text.utf8))
        }
    }

    /// The exact form `stored` writes, or nil (for anything else, whitespace included). Read as UTF-8 bytes: every
    /// character of that form is ASCII, and a byte that is not is refused (as is any quote or backslash in a value).
    static func parseStored(_ text: String) -> RenewalState? {
        let bytes = Array(text.utf8)
        let prefix = Array(#"{"items":[{"#.utf8), suffix = Array("}]}".utf8)
        guard bytes.count >= prefix.count + suffix.count, bytes.starts(with: prefix), bytes.suffix(suffix.count).elementsEqual(suffix) else {
            return nil
        }
        // Items are separated by "},{"; within an item, fields by "," (no value holds a comma, brace or quote).
        var items: [Item] = []
        for item in Self.split(bytes[prefix.count..<(bytes.count - suffix.count)], on: Array("},{".utf8)) {
            var profile: CertificateProfileKind?, step: Step?, oldSerial: SerialNumber?, newSerial: SerialNumber?
            var seen = 0
            for field in Self.split(item, on: [UInt8(ascii: ",")]) {
                let parts = Self.split(field, on: [UInt8(ascii: ":")])
                guard parts.count == 2, let key = unquoted(parts[0]), let value = unquoted(parts[1]) else { return nil }
                let text = String(decoding: value, as: UTF8.self)
                seen += 1
                switch String(decoding: key, as: UTF8.self) {
                case "profile" where profile == nil: profile = CertificateProfileKind(rawValue: text)
                case "step" where step == nil: step = Step(rawValue: text)
                case "oldSerial" where oldSerial == nil: oldSerial = try? SerialNumber(hex: text)
                case "newSerial" where newSerial == nil:
                    guard let serial = try? SerialNumber(hex: text) else { return nil }
                    newSerial = serial
                default: return nil
                }
            }
            guard let profile, let step, let oldSerial, seen == (newSerial == nil ? 3 : 4) else { return nil }
            items.append(Item(profile: profile, step: step, oldSerial: oldSerial, newSerial: newSerial))
        }
        return RenewalState(items: items)
    }

    /// The parts of `bytes` between occurrences of `separator` (empty parts kept).
    private static func split(_ bytes: ArraySlice<UInt8>, on separator: [UInt8]) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex, index = bytes.startIndex
        while index <= bytes.endIndex - separator.count {
            if bytes[index..<(index + separator.count)].elementsEqual(separator) {
                parts.append(bytes[start..<index])
                index += separator.count
                start = index
            } else {
                index += 1
            }
        }
        parts.append(bytes[start..<bytes.endIndex])
        return parts
    }

    /// The bytes between two quotes, when there is nothing but ASCII without quotes or backslashes between them.
    private static func unquoted(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "\""), bytes.last == UInt8(ascii: "\"") else { return nil }
        let inner = bytes.dropFirst().dropLast()
        return inner.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 >= 0x80 }) ? nil : inner
    }
}
