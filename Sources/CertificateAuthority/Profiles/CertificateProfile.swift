public import CardDeskCore
public import SwiftASN1
public import X509

/// Where relying parties find status and issuer certificates; every issued certificate names these URLs.
public struct PKIURLs: Hashable, Sendable {
    /// The server's public base URL, without a trailing slash, for example `http://127.0.0.1:8080`.
    public let base: String

    public init(base: String) {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
    }

    public var ocsp: String { "\(base)/ocsp" }
    public func caIssuers(_ profile: CertificateProfileKind) -> String { "\(base)/pki/\(profile.rawValue)-ca.crt" }
    public func crl(_ profile: CertificateProfileKind) -> String { "\(base)/crl/\(profile.rawValue).crl" }
}

/// The rules for a card holder's certificate of one kind.
public struct CertificateProfile: Hashable, Sendable {
    /// IANA reserved enterprise number 32473 for documentation (RFC 5612): fine for a demo, to be replaced by a real
    /// policy OID (`--policy-oid`) in any deployment.
    public static let examplePolicyOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 32473, 1, 1]
    /// Microsoft smartcard logon, which Windows and many clinical systems require on a login certificate.
    public static let smartcardLogon: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 311, 20, 2, 2]

    public let kind: CertificateProfileKind
    /// How long a certificate lives, in days; default 3 years (1095 days).
    public var validityDays: Int
    public var policyOID: ASN1ObjectIdentifier

    public init(kind: CertificateProfileKind, validityDays: Int = 1095, policyOID: ASN1ObjectIdentifier = Self.examplePolicyOID) {
        self.kind = kind
        self.validityDays = validityDays
        self.policyOID = policyOID
    }

    /// The subject the CA writes, built from the user record (never from the CSR):
    /// `O=<organisation>, OU=People, CN=<12-digit id>_<Given>_<Family>`.
    public static func subject(for user: User) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName(user.organisation)
            OrganizationalUnitName("People")
            CommonName(user.certificateCommonName)
        }
    }

    /// `subject(for:)` as text, as `DistinguishedName.description` writes it (RFC 4514 order, most specific first),
    /// which is what the store keeps. Written directly when neither value needs escaping (swift-certificates' own
    /// escaping, slow by its authors' word, was 3 % of an issuance); otherwise that description.
    static func subjectText(for user: User, subject: DistinguishedName) -> String {
        let commonName = user.certificateCommonName
        guard needsNoEscaping(commonName), needsNoEscaping(user.organisation) else { return subject.description }
        return "CN=\(commonName),OU=People,O=\(user.organisation)"
    }

    /// No character RFC 4514 escapes anywhere (`,+"\<>;`), no leading space or `#`, no trailing space.
    private static func needsNoEscaping(_ value: String) -> Bool {
        let bytes = value.utf8
        guard let first = bytes.first, let last = bytes.last else { return true }
        if first == UInt8(ascii: " ") || first == UInt8(ascii: "#") || last == UInt8(ascii: " ") { return false }
        return !bytes.contains { byte in
            byte == UInt8(ascii: ",") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
                || byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: ";")
        }
    }

    /// The extensions that are the same in every certificate of this profile from one issuer (all but the subject key
    /// identifier), made once: `CertificateAuthority` keeps them, so an issuance adds only the key's identifier.
    func fixedExtensions(issuerKeyIdentifier: ArraySlice<UInt8>, urls: PKIURLs) throws -> FixedExtensions {
        let specific: [any CertificateExtensionConvertible]
        switch kind {
        case .authentication:
            specific = [
                Critical(KeyUsage(digitalSignature: true)),
                try ExtendedKeyUsage([.clientAuth, ExtendedKeyUsage.Usage(oid: Self.smartcardLogon)]),
            ]
        case .signing:
            specific = [Critical(KeyUsage(nonRepudiation: true))]
        }
        let before: [any CertificateExtensionConvertible] = specific + [Critical(BasicConstraints.notCertificateAuthority)]
        let after: [any CertificateExtensionConvertible] = [
            AuthorityKeyIdentifier(keyIdentifier: issuerKeyIdentifier),
            AuthorityInformationAccess([
                .init(method: .ocspServer, location: .uniformResourceIdentifier(urls.ocsp)),
                .init(method: .issuingCA, location: .uniformResourceIdentifier(urls.caIssuers(kind))),
            ]),
            CRLDistributionPoints(url: urls.crl(kind)),
            CertificatePolicies(policy: policyOID),
        ]
        return FixedExtensions(
            before: try before.map { try $0.makeCertificateExtension() }, after: try after.map { try $0.makeCertificateExtension() }
        )
    }

    /// A profile's extensions around the subject key identifier, in the order every certificate carries them: key
    /// usage (and extended key usage), basic constraints, subject key identifier, authority key identifier, authority
    /// information access, CRL distribution points, certificate policies.
    struct FixedExtensions: Sendable {
        let before: [Certificate.Extension]
        let after: [Certificate.Extension]

        func extensions(subjectKey: Certificate.PublicKey) throws -> Certificate.Extensions {
            try Certificate.Extensions(before + [try SubjectKeyIdentifier(hash: subjectKey).makeCertificateExtension()] + after)
        }
    }
}
