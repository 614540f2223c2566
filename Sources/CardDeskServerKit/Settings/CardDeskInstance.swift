import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
public import RegistrationAuthority
public import CardDeskWeb
public import Foundation
public import VirtualSmartcard
public import Logging
public import Messaging

/// A data directory opened for work: its store, its PKI, the CA and the OCSP responder built on them.
/// The server and every operator command open the same directory the same way.
public struct CardDeskInstance: Sendable {
    public let settings: ServerSettings
    public let store: SQLStore
    public let authority: CertificateAuthority
    public let ocsp: OCSPResponder
    public let renewal: RenewalEngine
    public let login: LoginService
    public let unlock: UnlockService
    public let cardIssuer: CardIssuer
    public let enrolment: CardEnrolment
    /// The maker of virtual cards (their attestation CA).
    public let manufacturer: VirtualCardManufacturer
    /// For the outbox worker, which opens the sealed message bodies.
    let masterKey: MasterKey
    public let clock: any WallClock

    public var pkiDirectory: URL { settings.dataDirectory.appendingPathComponent("pki") }

    /// - Parameters:
    ///   - serving: a server (true) signs each certificate's OCSP answer when it issues or revokes it; an operator
    ///     command (false) leaves that to the servers (its process would certify a responder of its own for it).
    ///   - commitWatch: follows the renewal engine's commits (crash tests only; nil in production).
    public static func open(
        _ settings: ServerSettings, logger: Logger, clock: any WallClock = SystemClock(), serving: Bool = false, commitWatch: (any RenewalCommitWatch)? = nil
    ) async throws -> CardDeskInstance {
        let manager = FileManager.default
        let data = settings.dataDirectory
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: data.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw CardDeskError(.corruptDataDirectory, "The data directory \(data.path) is a file, not a folder.")
            }
        } else {
            do {
                try SecretFile.createDirectory(data.path)
            } catch {
                throw CardDeskError(.configuration, "Cannot create the data directory \(data.path): \(error.localizedDescription)")
            }
        }
        let pkiDirectory = data.appendingPathComponent("pki")
        let pkiExists = manager.fileExists(atPath: pkiDirectory.path)

        let masterKey = try masterKey(settings, pkiExists: pkiExists)

        let store = try await SQLStore.open(settings.database, logger: logger, now: clock.now(), auditKey: masterKey.derivedKey(label: "audit-chain"))
        do {
            if !pkiExists, try await store.certificateCount() > 0 {
                throw CardDeskError(.corruptDataDirectory, "The database holds issued certificates but \(pkiDirectory.path) is missing: restore the pki folder from a backup instead of creating a new CA.")
            }
            let hierarchy: CAHierarchy
            let created: Bool
            switch settings.caKeys {
            case .sealed:
                (hierarchy, created) = try CAHierarchy.loadOrCreate(
                    directory: pkiDirectory, keys: SealedFileKeyStore(masterKey: masterKey), organisation: settings.organisation, now: clock.now()
                )
            case .pkcs11(let token):
                // Keys in an HSM are made only by the key ceremony, never on the fly.
                guard pkiExists else {
                    throw CardDeskError(.configuration, "The CA keys are configured to be in the PKCS#11 token \"\(token.token)\", but \(pkiDirectory.path) holds no PKI yet: run `carddesk-server ca init --pkcs11-module \(token.module) --token-label \(token.token) --pin-file FILE` first.")
                }
                hierarchy = try CAHierarchy.load(directory: pkiDirectory, keys: try PKCS11KeyStore(module: token.module, tokenLabel: token.token, pin: try token.readPIN()))
                created = false
            }
            if created {
                try await store.appendAudit(AuditEvent(
                    action: .pkiCreate, actor: "system", subject: "ca:\(settings.organisation)",
                    details: "root and issuing CAs (authentication, signing) created in \(pkiDirectory.path)", time: clock.now()
                ))
                logger.notice("Created a new PKI", metadata: ["directory": "\(pkiDirectory.path)"])
            }
            var profiles: [CertificateProfileKind: CertificateProfile] = [:]
            for kind in CertificateProfileKind.allCases {
                profiles[kind] = CertificateProfile(kind: kind, validityDays: settings.validityDays, policyOID: settings.policyOID)
            }
            let ocsp = OCSPResponder(hierarchy: hierarchy, status: store, clock: clock, validitySeconds: Int64(settings.ocspValidityMinutes) * 60, audit: store)
            let authority = CertificateAuthority(
                hierarchy: hierarchy, profiles: profiles, urls: PKIURLs(base: settings.publicURL), storage: store, clock: clock,
                crlValiditySeconds: Int64(settings.crlValidityHours) * 3600, listener: serving ? ocsp : nil
            )
            // Key attestation: the virtual-card manufacturer (made on first start) and the configured card vendors' roots.
            let manufacturer = try VirtualCardManufacturer.open(folder: settings.virtualCardManufacturerFolder)
            let attestation = AttestationPolicy(
                required: settings.attestationRequired,
                trusted: (settings.attestationVirtualCards ? [manufacturer.certificate] : []) + (try settings.attestationRoots.flatMap(AttestationPolicy.certificates(pemFile:)))
            )
            let renewal = RenewalEngine(
                authority: authority, store: store, masterKey: masterKey, clock: clock, window: RenewalWindow(days: settings.renewalWindowDays),
                attestation: attestation, commitWatch: commitWatch, selfRenewalLimit: settings.selfRenewalLimit
            )
            let cardIssuer = CardIssuer(authority: authority, users: store, registry: store, masterKey: masterKey, clock: clock, manufacturer: manufacturer)
            let enrolment = CardEnrolment(authority: authority, store: store, masterKey: masterKey, clock: clock, attestation: attestation)
            let login = LoginService(store: store, renewal: renewal, clock: clock)
            let unlock = UnlockService(store: store, masterKey: masterKey, clock: clock, allowedEmailDomains: settings.allowedEmailDomains)
            return CardDeskInstance(
                settings: settings, store: store, authority: authority, ocsp: ocsp, renewal: renewal, login: login, unlock: unlock,
                cardIssuer: cardIssuer, enrolment: enrolment, manufacturer: manufacturer, masterKey: masterKey, clock: clock
            )
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// The data directory's master key: from the settings, or its file (made on first use). A directory whose PKI
    /// exists without the key file is refused: its sealed secrets could not be opened.
    static func masterKey(_ settings: ServerSettings, pkiExists: Bool) throws -> MasterKey {
        if let base64 = settings.masterKeyBase64 { return try MasterKey(base64: base64) }
        if pkiExists, !FileManager.default.fileExists(atPath: settings.masterKeyFile.path) {
            throw CardDeskError(.corruptDataDirectory, "The secrets in \(settings.dataDirectory.appendingPathComponent("pki").path) are sealed, but the master key file \(settings.masterKeyFile.path) is missing. Restore it, or set CARDDESK_MASTER_KEY.")
        }
        return try MasterKey.loadOrCreate(file: settings.masterKeyFile)
    }

    public func close() async {
        try? await store.close()
    }
}

extension CardDeskInstance {
    /// Everything the HTTP application calls into.
    public var webServices: WebServices {
        WebServices(
            store: store, authority: authority, ocsp: ocsp, renewal: renewal, login: login, unlock: unlock, enrolment: enrolment, pages: settings.pages,
            limiter: RateLimiter(store: store, clock: clock, scale: Double(settings.rateLimitPercent) / 100),
            trustedProxies: settings.trustedProxies, raRoleCodes: settings.raRoleCodes
        )
    }
}

extension CardDeskInstance {
    /// The expiry reminders the settings ask for (`reminders.days`); nil when they are turned off.
    public var expiryReminders: ExpiryReminders? {
        settings.reminderDays.isEmpty
            ? nil : ExpiryReminders(store: store, masterKey: masterKey, clock: clock, days: settings.reminderDays, publicURL: settings.publicURL)
    }

    /// The outbox worker with the given senders (the transport) instead of the configured ones.
    public func outboxWorker(senders: MessageSenders, logger: Logger) -> OutboxWorker {
        OutboxWorker(store: store, masterKey: masterKey, senders: senders, clock: clock, logger: logger)
    }

    /// The worker that sends queued emails and text messages, with the senders the settings configure.
    public func outboxWorker(logger: Logger) throws -> OutboxWorker {
        var senders = MessageSenders()
        if let url = settings.smtpURL {
            senders.email = SMTPSender(settings: try SMTPSender.Settings.parse(url: url, from: settings.smtpFrom ?? "", trustedCAFile: settings.smtpCAFile, allowPlaintext: settings.smtpInsecure))
        }
        if let gateway = settings.smsGatewayURL {
            guard let url = URL(string: gateway), url.scheme?.hasPrefix("http") == true else {
                throw CardDeskError(.configuration, "The text message gateway \"\(gateway)\" is not an http(s) URL.")
            }
            senders.sms = HTTPTextSender(gateway: url, token: settings.smsGatewayToken)
        }
        return OutboxWorker(store: store, masterKey: masterKey, senders: senders, clock: clock, logger: logger)
    }
}
