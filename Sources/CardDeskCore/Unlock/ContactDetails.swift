/// Where a card holder receives one-time codes: an email address and/or a mobile number, each usable only once
/// confirmed (by a code sent to it, or because an operator or RA set it).
public struct ContactDetails: Hashable, Sendable {
    public let userID: UserID
    public var email: String?
    public var emailConfirmed: Bool
    public var mobile: String?
    public var mobileConfirmed: Bool

    public init(userID: UserID, email: String? = nil, emailConfirmed: Bool = false, mobile: String? = nil, mobileConfirmed: Bool = false) {
        self.userID = userID
        self.email = email
        self.emailConfirmed = emailConfirmed
        self.mobile = mobile
        self.mobileConfirmed = mobileConfirmed
    }

    /// The confirmed channels, with their masked addresses, in a fixed order (email first).
    public var usable: [(ContactChannel, String)] {
        var result: [(ContactChannel, String)] = []
        if let email, emailConfirmed { result.append((.email, email)) }
        if let mobile, mobileConfirmed { result.append((.sms, mobile)) }
        return result
    }

    public func address(for channel: ContactChannel) -> String? {
        switch channel {
        case .email: emailConfirmed ? email : nil
        case .sms: mobileConfirmed ? mobile : nil
        }
    }
}

public enum ContactChannel: String, Hashable, Sendable, Codable, CaseIterable {
    case email
    case sms

    /// How a person reads it: "email" / "text message".
    public var spoken: String {
        switch self {
        case .email: "email"
        case .sms: "text message"
        }
    }

    /// An address shown without giving it away: `a•••••@nhs.net`, `•••••••••123`.
    public static func mask(_ address: String, channel: ContactChannel) -> String {
        switch channel {
        case .email:
            guard let at = address.firstIndex(of: "@") else { return "•••" }
            let local = address[..<at]
            return String(local.prefix(1)) + String(repeating: "•", count: max(local.count - 1, 3)) + address[at...]
        case .sms:
            return String(repeating: "•", count: max(address.count - 3, 3)) + address.suffix(3)
        }
    }
}

/// Checks contact addresses.
public enum ContactAddress {
    /// A plain email address on one of the allowed domains (or any domain when the list is empty).
    public static func email(_ text: String, allowedDomains: [String]) throws(CardDeskError) -> String {
        let address = text.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        let allowedCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789.-_+'")
        guard address.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              parts[0].allSatisfy({ allowedCharacters.contains($0) }), parts[1].allSatisfy({ allowedCharacters.contains($0) && $0 != "_" && $0 != "+" }),
              !parts[1].hasPrefix("."), !parts[1].hasSuffix(".")
        else {
            throw CardDeskError(.invalidInput, "\"\(text)\" is not an email address.")
        }
        let domain = String(parts[1])
        if !allowedDomains.isEmpty, !allowedDomains.contains(where: { domain == $0 || domain.hasSuffix("." + $0) }) {
            throw CardDeskError(
                .emailDomainNotAllowed,
                "Email addresses for unlocking cards must be at one of: \(allowedDomains.joined(separator: ", ")). Use your work email address."
            )
        }
        return address
    }

    /// A mobile number: digits with an optional leading +, 10 to 15 digits; spaces and hyphens are dropped.
    public static func mobile(_ text: String) throws(CardDeskError) -> String {
        let compact = text.filter { $0 != " " && $0 != "-" }
        let digits = compact.hasPrefix("+") ? compact.dropFirst() : Substring(compact)
        guard (10...15).contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
            throw CardDeskError(.invalidInput, "\"\(text)\" is not a mobile number: use 10 to 15 digits, such as 07700 900123 or +447700900123.")
        }
        return compact
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}

extension Set where Element == Character {
    fileprivate static var whitespaces: Set<Character> { [" ", "\t", "\n", "\r"] }
}
