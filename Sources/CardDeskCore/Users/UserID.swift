/// A card holder's 12-digit user identifier, as printed on the card and used by the national directory.
public struct UserID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let rawValue: String

    /// Accepts exactly twelve ASCII digits.
    public init(_ text: String) throws(CardDeskError) {
        guard text.utf8.count == 12, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw CardDeskError(.invalidInput, "A user ID is exactly 12 digits (for example 555254600106); got \"\(text)\".")
        }
        self.rawValue = text
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
