import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
public import Foundation
public import Logging

/// The CA key ceremony: the CA keys are generated inside the HSM (sensitive, never extractable), the hierarchy is built
/// on them, and every step goes into the audit log. The data directory's `config.json` then names the token, so
/// `serve` and the operator commands sign through it.
public enum KeyCeremony {
    public struct Request: Sendable {
        public var module: String
        public var tokenLabel: String
        public var pinFile: String
        public var rootTokenLabel: String?
        public var keyType: CAKeyType

        public init(module: String, tokenLabel: String, pinFile: String, rootTokenLabel: String?, keyType: CAKeyType = .p256) {
            self.module = module
            self.tokenLabel = tokenLabel
            self.pinFile = pinFile
            self.rootTokenLabel = rootTokenLabel
            self.keyType = keyType
        }
    }

    /// Runs the ceremony for the data directory of `settings`; returns the steps, as audited.
    public static func run(_ request: Request, settings: ServerSettings, actor: String, logger: Logger) async throws -> [String] {
        let data = settings.dataDirectory
        let pki = data.appendingPathComponent("pki")
        guard !FileManager.default.fileExists(atPath: pki.path) else {
            throw CardDeskError(.configuration, "\(pki.path) already holds a PKI: a key ceremony makes a new one only in a data directory without one.")
        }
        let pinSettings = CAKeySettings.PKCS11(module: request.module, token: request.tokenLabel, pinFile: request.pinFile, pin: nil)
        let keys = try PKCS11KeyStore(module: request.module, tokenLabel: request.tokenLabel, pin: try pinSettings.readPIN(), rootTokenLabel: request.rootTokenLabel, keyType: request.keyType)
        try SecretFile.createDirectory(data.path)
        let masterKey = try CardDeskInstance.masterKey(settings, pkiExists: false)
        let clock = SystemClock()
        let store = try await SQLStore.open(settings.database, logger: logger, now: clock.now(), auditKey: masterKey.derivedKey(label: "audit-chain"))
        let subject = "ca:\(settings.organisation)"
        var steps: [String] = []
        do {
            if try await store.certificateCount() > 0 {
                throw CardDeskError(.corruptDataDirectory, "The database holds issued certificates but \(pki.path) is missing: restore the pki folder from a backup instead of making new CA keys.")
            }
            do {
                _ = try CAHierarchy.loadOrCreate(directory: pki, keys: keys, organisation: settings.organisation, now: clock.now()) { steps.append($0) }
            } catch {
                // What was done before the failure stays on record: keys it made are in the token, without a PKI.
                for step in steps {
                    _ = try await store.appendAudit(AuditEvent(action: .caCeremony, actor: actor, subject: subject, details: step, time: clock.now()))
                }
                _ = try await store.appendAudit(AuditEvent(
                    action: .caCeremony, actor: actor, subject: subject, outcome: .failure, details: (error as? CardDeskError)?.reason ?? "\(error)", time: clock.now()
                ))
                throw error
            }
            for step in steps {
                _ = try await store.appendAudit(AuditEvent(action: .caCeremony, actor: actor, subject: subject, details: step, time: clock.now()))
            }
            _ = try await store.appendAudit(AuditEvent(
                action: .pkiCreate, actor: actor, subject: subject,
                details: "root and issuing CAs (authentication, signing) created in \(pki.path), keys in \(keys.description)", time: clock.now()
            ))
            try writeConfiguration(pinSettings, into: data)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        return steps
    }

    /// Names the token in `<data>/config.json` (keeping what is there): the PIN file's path, never the PIN.
    static func writeConfiguration(_ token: CAKeySettings.PKCS11, into data: URL) throws {
        let file = data.appendingPathComponent("config.json")
        var root: [String: Any] = [:]
        if let existing = FileManager.default.contents(atPath: file.path) {
            guard let object = try? JSONSerialization.jsonObject(with: existing) as? [String: Any] else {
                throw CardDeskError(.configuration, "\(file.path) is not a JSON object: add the ca section by hand (ca.keys=pkcs11, ca.pkcs11.module, ca.pkcs11.token, ca.pkcs11.pin.file).")
            }
            root = object
        }
        var pkcs11: [String: Any] = ["module": token.module, "token": token.token]
        if let pinFile = token.pinFile { pkcs11["pin"] = ["file": URL(fileURLWithPath: pinFile).standardizedFileURL.path] }
        root["ca"] = ["keys": "pkcs11", "pkcs11": pkcs11]
        let bytes = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try SecretFile.write(Array(bytes), to: file.path, mode: 0o644)
    }
}
