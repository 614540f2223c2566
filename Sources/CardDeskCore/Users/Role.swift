/// A job role held at an organisation, as the national directory lists them:
/// a role code such as `S0080:G0450:R5080` at an organisation (ODS) code such as `RBQ`.
public struct Role: Hashable, Sendable, Codable, CustomStringConvertible {
    public let code: String
    public let organisation: String

    public init(code: String, organisation: String) throws(CardDeskError) {
        guard Self.isRoleCode(code) else {
            throw CardDeskError(.invalidInput, "\"\(code)\" is not a role code: expected parts like S0080:G0450:R5080.")
        }
        guard OrganisationCode.isValid(organisation) else {
            throw CardDeskError(.invalidInput, "\"\(organisation)\" is not an organisation code: use 3 to 10 letters and digits, such as RBQ.")
        }
        self.code = code
        self.organisation = organisation
    }

    /// Parses the `CODE@ORG` form used on the command line, for example `S0080:G0450:R5080@RBQ`.
    public init(parsing text: String) throws(CardDeskError) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw CardDeskError(.invalidInput, "A role is written ROLECODE@ORG, for example S0080:G0450:R5080@RBQ; got \"\(text)\".")
        }
        try self.init(code: String(parts[0]), organisation: String(parts[1]))
    }

    public var description: String { "\(code)@\(organisation)" }

    private static func isRoleCode(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.count <= 6 && parts.allSatisfy { part in
            part.count >= 2 && part.count <= 10 && part.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric }
        }
    }
}

/// Organisation (ODS) codes: short upper-case letters and digits.
public enum OrganisationCode {
    public static func isValid(_ text: String) -> Bool {
        (3...10).contains(text.count) && text.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric }
    }
}

extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool {
        ("0"..."9").contains(self) || ("A"..."Z").contains(self) || ("a"..."z").contains(self)
    }
}
