/// A card holder as the registration authority knows them.
public struct User: Hashable, Sendable, Codable {
    /// Whether the user may be issued certificates.
    public enum Status: String, Hashable, Sendable, Codable {
        case active
        case suspended
    }

    public let id: UserID
    public let givenName: String
    public let familyName: String
    /// The organisation (ODS code) that employs the user; it becomes the certificate subject's O.
    public let organisation: String
    public let roles: [Role]
    public var status: Status

    public init(
        id: UserID,
        givenName: String,
        familyName: String,
        organisation: String,
        roles: [Role],
        status: Status = .active
    ) throws(CardDeskError) {
        for (label, name) in [("given name", givenName), ("family name", familyName)] {
            guard PersonName.isValid(name) else {
                throw CardDeskError(.invalidInput, "The \(label) \"\(name)\" cannot be used: use 1 to 64 letters, spaces, hyphens or apostrophes.")
            }
        }
        guard OrganisationCode.isValid(organisation) else {
            throw CardDeskError(.invalidInput, "\"\(organisation)\" is not an organisation code: use 3 to 10 letters and digits, such as RBQ.")
        }
        guard !roles.isEmpty else {
            throw CardDeskError(.invalidInput, "A user needs at least one role, written ROLECODE@ORG (for example S0080:G0450:R5080@RBQ).")
        }
        self.id = id
        self.givenName = givenName
        self.familyName = familyName
        self.organisation = organisation
        self.roles = roles
        self.status = status
    }

    /// The certificate common name the national PKI uses: `<12-digit id>_<Given>_<Family>`.
    /// Spaces inside a name become hyphens so the three parts stay separable.
    public var certificateCommonName: String {
        func part(_ name: String) -> String { name.replacingSpaces() }
        return "\(id.rawValue)_\(part(givenName))_\(part(familyName))"
    }
}

enum PersonName {
    static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.count), name.first != " ", name.last != " " else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            scalar.properties.isAlphabetic || scalar == " " || scalar == "-" || scalar == "'"
        }
    }
}

extension String {
    fileprivate func replacingSpaces() -> String {
        String(self.map { $0 == " " ? "-" : $0 })
    }
}
