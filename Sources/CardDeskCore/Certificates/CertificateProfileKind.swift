/// The two certificates a card holds, each from its own issuing CA, as in the national PKI.
public enum CertificateProfileKind: String, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Logs in to clinical systems: KeyUsage digitalSignature; EKU clientAuth and smartcard logon.
    case authentication
    /// Signs clinical documents: KeyUsage nonRepudiation.
    case signing

    public var description: String { rawValue }

    public init(parsing text: String) throws(CardDeskError) {
        guard let kind = Self(rawValue: text) else {
            throw CardDeskError(.invalidInput, "Unknown profile \"\(text)\": use authentication or signing.")
        }
        self = kind
    }
}
