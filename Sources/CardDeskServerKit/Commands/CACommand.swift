import ArgumentParser
import CardDeskCore
import CertificateAuthority
import Foundation
import X509

/// `carddesk-server ca init|issue|revoke|crl`: the certificate authority from the command line.
struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "Make the CA keys in an HSM, issue and revoke certificates, and print CRLs.",
        subcommands: [Init.self, Issue.self, Revoke.self, CRL.self]
    )

    /// `carddesk-server ca init --pkcs11-module PATH --token-label LABEL --pin-file FILE [--root-token LABEL]`
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The key ceremony: generate the root and issuing CA keys inside an HSM (PKCS#11) and build the PKI on them.",
            discussion: """
            The keys are generated in the token (sensitive, never extractable); the CA certificates go into <data>/pki,             each step into the audit log, and <data>/config.json names the token so that `serve` and the operator             commands sign through it. The PIN is read from the file, never from the command line.
            """
        )

        @OptionGroup var store: StoreOptions
        @Option(name: .customLong("pkcs11-module"), help: "The HSM vendor's PKCS#11 library (SoftHSMv2: /usr/lib/softhsm/libsofthsm2.so).") var module: String
        @Option(name: .customLong("token-label"), help: "The label of the token that holds the issuing CA keys.") var tokenLabel: String
        @Option(name: .customLong("pin-file"), help: "A file holding the token's user PIN.") var pinFile: String
        @Option(name: .customLong("root-token"), help: "The label of a separate token for the root CA key (kept offline after the ceremony).") var rootToken: String?
        @Option(name: .customLong("key-type"), help: "The CA keys' type: \(CAKeyType.allCases.map(\.rawValue).joined(separator: ", ")).") var keyType: String = "p256"

        func run() async throws {
            try await CommandSupport.reportingErrors {
                guard let type = CAKeyType(rawValue: keyType) else {
                    throw CardDeskError(.invalidInput, "--key-type must be one of \(CAKeyType.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(keyType)\").")
                }
                let settings = try await ServerSettings.resolve(flags: store.flags, configFile: store.config)
                let logger = LoggingSetup.bootstrap(format: "text", level: "warning")
                let steps = try await KeyCeremony.run(
                    .init(module: module, tokenLabel: tokenLabel, pinFile: pinFile, rootTokenLabel: rootToken, keyType: type),
                    settings: settings, actor: CommandSupport.operatorActor, logger: logger
                )
                for step in steps { print(step) }
                print("The PKI is in \(settings.dataDirectory.appendingPathComponent("pki").path); \(settings.dataDirectory.appendingPathComponent("config.json").path) names the token for serve.")
            }
        }
    }

    /// `carddesk-server ca issue --user ID --profile authentication|signing --csr FILE.pem` → certificate PEM on stdout.
    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a certificate for a user from a PKCS#10 request.")

        @OptionGroup var store: StoreOptions
        @Option(help: "The 12-digit user ID.") var user: String
        @Option(help: "authentication or signing.") var profile: String
        @Option(help: "The certificate request (PEM or DER).") var csr: String
        @Option(name: .customLong("validity-days"), help: "Override the profile's validity (for demos and tests).") var validityDays: Int?

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                let userID = try UserID(user)
                let kind = try CertificateProfileKind(parsing: profile)
                guard let bytes = FileManager.default.contents(atPath: csr) else {
                    throw CardDeskError(.invalidInput, "Cannot read the certificate request file \(csr).")
                }
                let request = try CertificateRequestCheck.parse(Array(bytes))
                let prepared = try await instance.authority.prepare(userID: userID, profile: kind, csr: request, validityDays: validityDays)
                let certificate = try await instance.authority.issue(prepared, actor: CommandSupport.operatorActor)
                print(try certificate.serializeAsPEM().pemString)
            }
        }
    }

    /// `carddesk-server ca revoke SERIAL --reason keyCompromise|superseded|…`
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a certificate (SERIAL in hexadecimal, as `openssl x509 -serial` prints it).")

        @OptionGroup var store: StoreOptions
        @Argument(help: "The certificate serial number in hexadecimal.") var serial: String
        @Option(help: "The RFC 5280 reason: \(RevocationReason.operatorChoices.map(\.name).joined(separator: ", ")).") var reason: String = "unspecified"

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                let serialNumber = try SerialNumber(hex: serial)
                let reasonCode = try RevocationReason(parsing: reason)
                let record = try await instance.authority.revoke(serial: serialNumber, reason: reasonCode, actor: CommandSupport.operatorActor)
                print("Revoked \(record.profile) certificate \(record.serial.hex) of user \(record.userID) (\(reasonCode.name)) at \(record.revokedAt!).")
            }
        }
    }

    /// `carddesk-server ca crl --profile authentication|signing` → CRL PEM on stdout.
    struct CRL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "crl", abstract: "Print the current CRL of an issuing CA as PEM.")

        @OptionGroup var store: StoreOptions
        @Option(help: "authentication or signing.") var profile: String

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                let crl = try await instance.authority.currentCRL(try CertificateProfileKind(parsing: profile))
                print(crl.pemEncoded)
            }
        }
    }
}
