/// What the pages need to know about this installation.
public struct PageSettings: Sendable {
    /// Where the organisation's people get help; shown on the help page and next to every problem.
    public struct SupportContacts: Sendable {
        public var itPhone: String
        public var serviceDesk: String
        public var registrationAuthority: String
        public init(itPhone: String, serviceDesk: String, registrationAuthority: String) {
            self.itPhone = itPhone
            self.serviceDesk = serviceDesk
            self.registrationAuthority = registrationAuthority
        }
    }

    /// The port the workstation agent's localhost bridge listens on (127.0.0.1 only).
    public var bridgePort: Int
    /// Mark session cookies `Secure` (the server is reached over TLS).
    public var secureCookies: Bool
    public var organisation: String
    public var contacts: SupportContacts

    public static let defaultBridgePort = 43490

    public init(
        bridgePort: Int = PageSettings.defaultBridgePort, secureCookies: Bool = false, organisation: String = "CardDesk",
        contacts: SupportContacts = .init(
            itPhone: "your local IT service desk", serviceDesk: "your organisation's service desk",
            registrationAuthority: "your local Registration Authority"
        )
    ) {
        self.bridgePort = bridgePort
        self.secureCookies = secureCookies
        self.organisation = organisation
        self.contacts = contacts
    }
}
