/// RFC 5280 section 5.3.1 CRLReason codes.
public enum RevocationReason: Int, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case unspecified = 0
    case keyCompromise = 1
    case cACompromise = 2
    case affiliationChanged = 3
    case superseded = 4
    case cessationOfOperation = 5
    case certificateHold = 6
    // 7 is not used.
    case removeFromCRL = 8
    case privilegeWithdrawn = 9
    case aACompromise = 10

    /// The RFC 5280 name, as `openssl crl -text` and `openssl ocsp` print it in camel case.
    public var name: String {
        switch self {
        case .unspecified: "unspecified"
        case .keyCompromise: "keyCompromise"
        case .cACompromise: "cACompromise"
        case .affiliationChanged: "affiliationChanged"
        case .superseded: "superseded"
        case .cessationOfOperation: "cessationOfOperation"
        case .certificateHold: "certificateHold"
        case .removeFromCRL: "removeFromCRL"
        case .privilegeWithdrawn: "privilegeWithdrawn"
        case .aACompromise: "aACompromise"
        }
    }

    public var description: String { name }

    /// Reasons an operator may give. `removeFromCRL` only exists inside delta CRLs, and certificate holds
    /// are not offered: a card certificate is either valid or revoked for good.
    public static let operatorChoices: [RevocationReason] = allCases.filter { $0 != .removeFromCRL && $0 != .certificateHold }

    public init(parsing text: String) throws(CardDeskError) {
        guard let reason = Self.operatorChoices.first(where: { $0.name.lowercased() == text.lowercased() }) else {
            let names = Self.operatorChoices.map(\.name).joined(separator: ", ")
            throw CardDeskError(.invalidInput, "Unknown revocation reason \"\(text)\": use one of \(names).")
        }
        self = reason
    }
}
