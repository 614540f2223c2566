public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
public import RegistrationAuthority

/// What the HTTP layer calls into. Handlers get exactly these, passed in when the router is built
/// (no service lookup from a request context).
public struct WebServices: Sendable {
    public let store: SQLStore
    public let authority: CertificateAuthority
    public let ocsp: OCSPResponder
    public let renewal: RenewalEngine
    public let login: LoginService
    public let unlock: UnlockService
    public let enrolment: CardEnrolment
    public let pages: PageSettings
    public let limiter: RateLimiter
    /// The Registration Authority console's reads (`/ra`).
    public let raConsole: RAConsole
    let presence: AgentPresence
    /// Load balancers whose `X-Forwarded-For` names the client (their IP addresses).
    public let trustedProxies: Set<String>

    public init(
        store: SQLStore, authority: CertificateAuthority, ocsp: OCSPResponder, renewal: RenewalEngine, login: LoginService,
        unlock: UnlockService, enrolment: CardEnrolment, pages: PageSettings = PageSettings(), limiter: RateLimiter,
        trustedProxies: Set<String> = [], raRoleCodes: RARoleCodes = .defaults
    ) {
        self.raConsole = RAConsole(
            directory: store, codes: raRoleCodes, clock: renewal.clock, cancellation: CardCancellation(authority: authority, registry: store),
            cardWork: DeskCardWork(renewal: renewal, unlock: unlock, enrolment: enrolment)
        )
        self.trustedProxies = trustedProxies
        self.limiter = limiter
        self.presence = AgentPresence(store: store, clock: renewal.clock)
        self.unlock = unlock
        self.enrolment = enrolment
        self.pages = pages
        self.store = store
        self.authority = authority
        self.ocsp = ocsp
        self.renewal = renewal
        self.login = login
    }
}
