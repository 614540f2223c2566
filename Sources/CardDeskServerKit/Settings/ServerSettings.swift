public import CardDeskCore
public import CardDeskStore
import CertificateAuthority
public import CardDeskWeb
import Configuration
public import Foundation
public import SwiftASN1

/// Every setting the server and its operator commands read, resolved in layers:
/// command-line flags > environment (`CARDDESK_…`) > configuration file (JSON) > defaults.
///
/// | key | flag | environment | default |
/// |---|---|---|---|
/// | `data` | `--data` | `CARDDESK_DATA` | `./.carddesk` |
/// | `database.url` | `--database-url` | `CARDDESK_DATABASE_URL` | `sqlite:<data>/carddesk.sqlite` |
/// | `http.host` | `--host` | `CARDDESK_HTTP_HOST` | `127.0.0.1` |
/// | `http.port` | `--port` | `CARDDESK_HTTP_PORT` | `8080` |
/// | `public.url` | `--public-url` | `CARDDESK_PUBLIC_URL` | `http://<host>:<port>`; named in every certificate |
/// | `master.key` | — | `CARDDESK_MASTER_KEY` | none: the key file is used |
/// | `master.key.file` | — | `CARDDESK_MASTER_KEY_FILE` | `<data>/master.key` (created, mode 0600) |
/// | `pki.organisation` | — | `CARDDESK_PKI_ORGANISATION` | `CardDesk` (CA names) |
/// | `certificates.policy.oid` | `--policy-oid` | `CARDDESK_CERTIFICATES_POLICY_OID` | `1.3.6.1.4.1.32473.1.1` (RFC 5612 documentation arc) |
/// | `certificates.validity.days` | — | `CARDDESK_CERTIFICATES_VALIDITY_DAYS` | `1095` (3 years) |
/// | `renewal.window.days` | — | `CARDDESK_RENEWAL_WINDOW_DAYS` | `90` (renewal offered this long before expiry) |
/// | `crl.validity.hours` | — | `CARDDESK_CRL_VALIDITY_HOURS` | `24` |
/// | `ocsp.validity.minutes` | — | `CARDDESK_OCSP_VALIDITY_MINUTES` | `60` |
/// | `agent.bridge.port` | `--agent-port` | `CARDDESK_AGENT_BRIDGE_PORT` | `43490` (the workstation agent's localhost bridge) |
/// | `help.it.phone` | — | `CARDDESK_HELP_IT_PHONE` | `your local IT service desk` (shown on the pages) |
/// | `help.service.desk` | — | `CARDDESK_HELP_SERVICE_DESK` | `your organisation's service desk` |
/// | `help.registration.authority` | — | `CARDDESK_HELP_REGISTRATION_AUTHORITY` | `your local Registration Authority` |
/// | `smtp.url` | `--smtp` | `CARDDESK_SMTP_URL` | none: emails wait in the outbox (`smtp://[user:password@]host:port`) |
/// | `smtp.from` | `--smtp-from` | `CARDDESK_SMTP_FROM` | none (required with `smtp.url`) |
/// | `smtp.insecure` | `--smtp-insecure` | `CARDDESK_SMTP_INSECURE` | `false`: a relay must offer STARTTLS (with a valid certificate for its name), else nothing is sent |
/// | `smtp.ca.file` | — | `CARDDESK_SMTP_CA_FILE` | the system's trust store (PEM of the CA that signed the relay's certificate) |
/// | `email.allowed.domains` | `--allowed-email-domains` | `CARDDESK_EMAIL_ALLOWED_DOMAINS` | `nhs.net,nhs.uk` |
/// | `sms.gateway.url` | `--sms-gateway` | `CARDDESK_SMS_GATEWAY_URL` | none: text messages wait in the outbox |
/// | `sms.gateway.token` | — | `CARDDESK_SMS_GATEWAY_TOKEN` | none |
/// | `rate.limit.percent` | — | `CARDDESK_RATE_LIMIT_PERCENT` | `100`: the rate limits as they are; `200` doubles them (many workstations behind one address), `0` turns them off |
/// | `attestation.required` | — | `CARDDESK_ATTESTATION_REQUIRED` | `true`: a new card key must come with the card's attestation that it was generated on the card |
/// | `attestation.roots` | — | `CARDDESK_ATTESTATION_ROOTS` | none: PEM files (comma-separated) of card manufacturers' attestation roots and intermediates (Yubico's PIV root for YubiKeys) |
/// | `attestation.virtual.cards` | — | `CARDDESK_ATTESTATION_VIRTUAL_CARDS` | `true`: trust the virtual-card manufacturer in `<data>/virtual-card-manufacturer` (demos, tests, training) |
/// | `ca.keys` | — | `CARDDESK_CA_KEYS` | `sealed`: CA keys sealed under the master key in `<data>/pki`; `pkcs11`: in an HSM (made by `ca init`) |
/// | `ca.pkcs11.module` | — | `CARDDESK_CA_PKCS11_MODULE` | none (required with `pkcs11`): the HSM vendor's PKCS#11 library |
/// | `ca.pkcs11.token` | — | `CARDDESK_CA_PKCS11_TOKEN` | none (required with `pkcs11`): the label of the token holding the issuing CA keys |
/// | `ca.pkcs11.pin.file` | — | `CARDDESK_CA_PKCS11_PIN_FILE` | none: a file holding the token's user PIN (or set `CARDDESK_CA_PKCS11_PIN`; never on the command line) |
/// | `http.trusted.proxies` | — | `CARDDESK_HTTP_TRUSTED_PROXIES` | none: IP addresses (comma-separated) of load balancers whose `X-Forwarded-For` names the client |
/// | `ra.role.manager` | — | `CARDDESK_RA_ROLE_MANAGER` | `RAMANAGER`: the role code that makes a user an RA Manager (at the organisation of the role) |
/// | `ra.role.agent.advanced` | — | `CARDDESK_RA_ROLE_AGENT_ADVANCED` | `RAAGENTADV` (RA Agent (Advanced)) |
/// | `ra.role.agent` | — | `CARDDESK_RA_ROLE_AGENT` | `RAAGENT` (RA Agent) |
/// | `ra.role.sponsor` | — | `CARDDESK_RA_ROLE_SPONSOR` | `RASPONSOR` (Sponsor) |
/// | `ra.role.lsa` | — | `CARDDESK_RA_ROLE_LSA` | `RALSA` (Local Smartcard Administrator) |
/// | `renewal.self.limit` | — | `CARDDESK_RENEWAL_SELF_LIMIT` | `2`: renewals in a row a holder may do themselves before their RA must renew the card (`0`: no limit) |
/// | `reminders.days` | — | `CARDDESK_REMINDERS_DAYS` | `90,30,7`: expiry reminders by email, these many days before a card's certificates expire (`none`: no reminders) |
/// | `log.level` | — | `CARDDESK_LOG_LEVEL` | `info` |
/// | `log.format` | — | `CARDDESK_LOG_FORMAT` | `json` when standard error is not a terminal, else `text` |
///
/// The configuration file is `--config FILE` (or `CARDDESK_CONFIG`), else `<data>/config.json` if it exists;
/// its keys nest, e.g. `{"http": {"port": 8443}, "certificates": {"validity": {"days": 730}}}`.
public struct ServerSettings: Sendable {
    public var dataDirectory: URL
    public var database: DatabaseLocation
    public var host: String
    public var port: Int
    public var publicURL: String
    public var masterKeyBase64: String?
    public var masterKeyFile: URL
    public var organisation: String
    public var policyOID: ASN1ObjectIdentifier
    public var validityDays: Int
    public var renewalWindowDays: Int
    public var crlValidityHours: Int
    public var ocspValidityMinutes: Int
    public var logLevel: String
    public var logFormat: String
    /// What the pages show and use: bridge port, support contacts, Secure cookies (when the public URL is https).
    public var pages: PageSettings
    public var smtpURL: String?
    public var smtpFrom: String?
    public var smtpCAFile: String?
    /// Plain SMTP allowed when the relay offers no STARTTLS (never with a relay password).
    public var smtpInsecure = false
    public var attestationRequired = true
    public var attestationRoots: [String] = []
    public var attestationVirtualCards = true

    /// Where the virtual-card manufacturer (the attestation CA of virtual cards) lives.
    public var virtualCardManufacturerFolder: URL { dataDirectory.appendingPathComponent("virtual-card-manufacturer") }
    public var allowedEmailDomains: [String]
    public var smsGatewayURL: String?
    public var smsGatewayToken: String?
    /// Rate limits in percent of the built-in ones (0 turns them off).
    public var rateLimitPercent: Int = 100
    public var trustedProxies: Set<String> = []
    /// Renewals in a row a holder may do themselves before their RA must renew the card (0: no limit).
    public var selfRenewalLimit = 2
    /// Days before expiry at which card holders are reminded by email (empty: never).
    public var reminderDays: [Int] = [90, 30, 7]
    /// The role codes that stand for the RA roles in this deployment.
    public var raRoleCodes: RARoleCodes = .defaults
    /// Where the CA keys live.
    public var caKeys: CAKeySettings = .sealed

    /// Values given on the command line, by configuration key.
    public typealias Flags = [String: String]

    public static func resolve(
        flags: Flags, configFile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ServerSettings {
        let flagProvider = InMemoryProvider(
            name: "flags",
            values: Dictionary(uniqueKeysWithValues: flags.map { key, value in
                let content: ConfigContent = Int(value).map { .int($0) } ?? (value == "true" ? .bool(true) : .string(value))
                return (AbsoluteConfigKey(key.split(separator: ".").map(String.init)), ConfigValue(content, isSecret: false))
            })
        )
        let environmentProvider = EnvironmentVariablesProvider(
            environmentVariables: environment, secretsSpecifier: .specific(["CARDDESK_MASTER_KEY", "CARDDESK_DATABASE_URL", "CARDDESK_SMTP_URL", "CARDDESK_SMS_GATEWAY_TOKEN", "CARDDESK_CA_PKCS11_PIN"])
        ).prefixKeys(with: "carddesk")

        // The data directory decides where the default configuration file is, so read it from the upper layers first.
        let upper = ConfigReader(providers: [flagProvider, environmentProvider])
        let dataPath = upper.string(forKey: "data", default: "./.carddesk")
        let explicitFile = configFile ?? upper.string(forKey: "config")
        var providers: [any ConfigProvider] = [flagProvider, environmentProvider]
        let filePath = explicitFile ?? URL(fileURLWithPath: dataPath).appendingPathComponent("config.json").path
        if explicitFile != nil || FileManager.default.fileExists(atPath: filePath) {
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: .init(filePath)))
            } catch {
                throw CardDeskError(.configuration, "Cannot read the configuration file \(filePath): \(error).")
            }
        }
        let config = ConfigReader(providers: providers)

        let data = URL(fileURLWithPath: config.string(forKey: "data", default: dataPath)).standardizedFileURL
        let databaseURL = config.string(forKey: "database.url", isSecret: true) ?? "sqlite:" + data.appendingPathComponent("carddesk.sqlite").path
        let host = config.string(forKey: "http.host", default: "127.0.0.1")
        let port = try integer(config, "http.port", default: 8080, range: 0...65535)
        let policyText = config.string(forKey: "certificates.policy.oid", default: "1.3.6.1.4.1.32473.1.1")
        let policy: ASN1ObjectIdentifier
        do {
            let components = policyText.split(separator: ".", omittingEmptySubsequences: false).map { UInt($0) }
            guard components.count >= 2, components.allSatisfy({ $0 != nil }) else { throw CardDeskError(.configuration, "") }
            policy = try ASN1ObjectIdentifier(elements: components.map { $0! })
        } catch {
            throw CardDeskError(.configuration, "The certificate policy OID \"\(policyText)\" is not a dotted OID such as 1.2.826.0.1285.0.2.0.")
        }
        let isTerminal = isatty(2) == 1
        let publicURL = config.string(forKey: "public.url", default: "http://\(host):\(port == 0 ? 8080 : port)")
        let defaults = PageSettings()
        let pages = PageSettings(
            bridgePort: try integer(config, "agent.bridge.port", default: PageSettings.defaultBridgePort, range: 1...65535),
            secureCookies: publicURL.lowercased().hasPrefix("https:"),
            organisation: config.string(forKey: "pki.organisation", default: "CardDesk"),
            contacts: .init(
                itPhone: config.string(forKey: "help.it.phone", default: defaults.contacts.itPhone),
                serviceDesk: config.string(forKey: "help.service.desk", default: defaults.contacts.serviceDesk),
                registrationAuthority: config.string(forKey: "help.registration.authority", default: defaults.contacts.registrationAuthority)
            )
        )
        var settings = ServerSettings(
            dataDirectory: data,
            database: try DatabaseLocation(url: databaseURL),
            host: host,
            port: port,
            publicURL: publicURL,
            masterKeyBase64: config.string(forKey: "master.key", isSecret: true),
            masterKeyFile: URL(fileURLWithPath: config.string(forKey: "master.key.file", default: data.appendingPathComponent("master.key").path)),
            organisation: config.string(forKey: "pki.organisation", default: "CardDesk"),
            policyOID: policy,
            validityDays: try integer(config, "certificates.validity.days", default: 1095, range: 1...3660),
            renewalWindowDays: try integer(config, "renewal.window.days", default: 90, range: 1...365),
            crlValidityHours: try integer(config, "crl.validity.hours", default: 24, range: 1...24 * 31),
            ocspValidityMinutes: try integer(config, "ocsp.validity.minutes", default: 60, range: 1...24 * 60 * 7),
            logLevel: config.string(forKey: "log.level", default: "info"),
            logFormat: config.string(forKey: "log.format", default: isTerminal ? "text" : "json"),
            pages: pages,
            smtpURL: config.string(forKey: "smtp.url", isSecret: true),
            smtpFrom: config.string(forKey: "smtp.from"),
            smtpCAFile: config.string(forKey: "smtp.ca.file"),
            allowedEmailDomains: config.string(forKey: "email.allowed.domains", default: "nhs.net,nhs.uk")
                .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty },
            smsGatewayURL: config.string(forKey: "sms.gateway.url"),
            smsGatewayToken: config.string(forKey: "sms.gateway.token", isSecret: true)
        )
        settings.smtpInsecure = config.bool(forKey: "smtp.insecure", default: false)
        settings.attestationRequired = config.bool(forKey: "attestation.required", default: true)
        settings.attestationVirtualCards = config.bool(forKey: "attestation.virtual.cards", default: true)
        settings.attestationRoots = config.string(forKey: "attestation.roots", default: "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        settings.rateLimitPercent = try integer(config, "rate.limit.percent", default: 100, range: 0...100_000)
        settings.trustedProxies = Set(config.string(forKey: "http.trusted.proxies", default: "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        settings.selfRenewalLimit = try integer(config, "renewal.self.limit", default: 2, range: 0...100)
        let reminderText = config.string(forKey: "reminders.days", default: "90,30,7").trimmingCharacters(in: .whitespaces)
        if reminderText == "none" {
            settings.reminderDays = []
        } else {
            let days = reminderText.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !days.isEmpty, days.allSatisfy({ $0.map { (1...3660).contains($0) } ?? false }) else {
                throw CardDeskError(.configuration, "The setting reminders.days must be days before expiry, comma-separated (such as 90,30,7), or none; got \"\(reminderText)\".")
            }
            settings.reminderDays = days.compactMap { $0 }
        }
        var raCodes: [RARole: String] = [:]
        for (role, key) in [
            (RARole.manager, "ra.role.manager"), (.agentAdvanced, "ra.role.agent.advanced"), (.agent, "ra.role.agent"),
            (.sponsor, "ra.role.sponsor"), (.localSmartcardAdministrator, "ra.role.lsa"),
        ] as [(RARole, ConfigKey)] {
            if let code = config.string(forKey: key) { raCodes[role] = code }
        }
        settings.raRoleCodes = try RARoleCodes(raCodes)
        switch config.string(forKey: "ca.keys", default: "sealed") {
        case "sealed":
            settings.caKeys = .sealed
        case "pkcs11":
            guard let module = config.string(forKey: "ca.pkcs11.module"), let token = config.string(forKey: "ca.pkcs11.token") else {
                throw CardDeskError(.configuration, "ca.keys=pkcs11 needs ca.pkcs11.module (the HSM's PKCS#11 library) and ca.pkcs11.token (the token's label).")
            }
            settings.caKeys = .pkcs11(.init(
                module: module, token: token, pinFile: config.string(forKey: "ca.pkcs11.pin.file"), pin: config.string(forKey: "ca.pkcs11.pin", isSecret: true)
            ))
        case let other:
            throw CardDeskError(.configuration, "The setting ca.keys must be sealed or pkcs11 (got \"\(other)\").")
        }
        return settings
    }

    private static func integer(_ config: ConfigReader, _ key: ConfigKey, default value: Int, range: ClosedRange<Int>) throws -> Int {
        let text: String
        if let number = config.int(forKey: key) {
            text = String(number)
        } else if let string = config.string(forKey: key) {
            text = string
        } else {
            return value
        }
        guard let number = Int(text), range.contains(number) else {
            throw CardDeskError(.configuration, "The setting \(key) must be a whole number from \(range.lowerBound) to \(range.upperBound) (got \"\(text)\").")
        }
        return number
    }
}

/// Where the CA keys live: sealed files (the embedded default) or an HSM through PKCS#11.
public enum CAKeySettings: Sendable, Equatable {
    public struct PKCS11: Sendable, Equatable {
        public var module: String
        public var token: String
        public var pinFile: String?
        public var pin: String?

        public init(module: String, token: String, pinFile: String?, pin: String?) {
            self.module = module
            self.token = token
            self.pinFile = pinFile
            self.pin = pin
        }

        /// The token's user PIN: from the PIN file, else `CARDDESK_CA_PKCS11_PIN`.
        public func readPIN() throws(CardDeskError) -> String {
            if let pinFile {
                guard let data = FileManager.default.contents(atPath: pinFile) else {
                    throw CardDeskError(.configuration, "The PIN file \(pinFile) cannot be read.")
                }
                let pin = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard !pin.isEmpty else { throw CardDeskError(.configuration, "The PIN file \(pinFile) is empty.") }
                return pin
            }
            if let pin, !pin.isEmpty { return pin }
            throw CardDeskError(.configuration, "The HSM token's PIN is not given: set ca.pkcs11.pin.file (a file readable only by this service) or CARDDESK_CA_PKCS11_PIN.")
        }
    }

    case sealed
    case pkcs11(PKCS11)
}
