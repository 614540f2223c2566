public import CardDeskStore
public import CertificateAuthority

/// What the HTTP layer calls into. Handlers get exactly these, passed in when the router is built
/// (no service lookup from a request context).
public struct WebServices: Sendable {
    public let store: SQLStore
    public let authority: CertificateAuthority
    public let ocsp: OCSPResponder

    public init(store: SQLStore, authority: CertificateAuthority, ocsp: OCSPResponder) {
        self.store = store
        self.authority = authority
        self.ocsp = ocsp
    }
}
