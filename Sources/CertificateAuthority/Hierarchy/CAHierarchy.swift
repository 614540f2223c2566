public import CardDeskCore
import Crypto
public import Foundation
import SwiftASN1
public import X509

/// The PKI: a root CA and one issuing CA per certificate profile (authentication, signing), as the national PKI has.
///
/// It lives in `<data>/pki/`: each CA's certificate as PEM and its key sealed under the master key. It is created
/// whole or not at all (built in a scratch folder, then renamed into place).
public struct CAHierarchy: Sendable {
    public let root: Certificate
    public let issuers: [CertificateProfileKind: IssuingCA]

    public func issuer(_ profile: CertificateProfileKind) -> IssuingCA { issuers[profile]! }

    static let files = ["root.pem", "root.key.sealed"]
        + CertificateProfileKind.allCases.flatMap { ["\($0.rawValue)-ca.pem", "\($0.rawValue)-ca.key.sealed"] }

    /// Whether `<directory>` already holds a PKI.
    public static func exists(in directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("root.pem").path)
    }

    /// Loads the PKI from `directory`, creating it first if the directory does not exist.
    /// Returns whether it was created, so the caller can audit that.
    public static func loadOrCreate(
        directory: URL, masterKey: MasterKey, organisation: String, now: Timestamp
    ) throws -> (hierarchy: CAHierarchy, created: Bool) {
        let manager = FileManager.default
        if manager.fileExists(atPath: directory.path) {
            return (try load(directory: directory, masterKey: masterKey), false)
        }
        let scratch = directory.deletingLastPathComponent().appendingPathComponent(".pki-\(UUID().uuidString)")
        try SecretFile.createDirectory(scratch.path)
        defer { try? manager.removeItem(at: scratch) }
        try create(in: scratch, masterKey: masterKey, organisation: organisation, now: now)
        do {
            try manager.moveItem(at: scratch, to: directory)
        } catch where manager.fileExists(atPath: directory.path) {
            // Another process created it first: use theirs.
            return (try load(directory: directory, masterKey: masterKey), false)
        }
        return (try load(directory: directory, masterKey: masterKey), true)
    }

    /// Loads and cross-checks an existing PKI. Any missing or damaged file is reported by name.
    public static func load(directory: URL, masterKey: MasterKey) throws -> CAHierarchy {
        func read(_ name: String) throws(CardDeskError) -> Data {
            let url = directory.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw CardDeskError(.corruptDataDirectory, "The data directory is damaged: \(url.path) is missing. Restore it from a backup; do not delete the pki folder, or every issued certificate loses its CA.")
            }
            return data
        }
        func certificate(_ name: String) throws -> Certificate {
            let text = String(decoding: try read(name), as: UTF8.self)
            do {
                return try Certificate(pemEncoded: text)
            } catch {
                throw CardDeskError(.corruptDataDirectory, "The data directory is damaged: \(directory.appendingPathComponent(name).path) is not a certificate.")
            }
        }
        func key(_ name: String, label: String, for certificate: Certificate) throws -> Certificate.PrivateKey {
            let key = try SoftwareCAKey(sealed: Array(try read(name)), label: label, masterKey: masterKey)
            guard key.publicKey == certificate.publicKey else {
                throw CardDeskError(.corruptDataDirectory, "The data directory is damaged: \(name) does not belong to its certificate.")
            }
            return Certificate.PrivateKey(key)
        }

        let root = try certificate("root.pem")
        _ = try key("root.key.sealed", label: "root CA", for: root)
        var issuers: [CertificateProfileKind: IssuingCA] = [:]
        for profile in CertificateProfileKind.allCases {
            let certificate = try certificate("\(profile.rawValue)-ca.pem")
            guard certificate.issuer == root.subject, root.publicKey.isValidSignature(certificate.signature, for: certificate) else {
                throw CardDeskError(.corruptDataDirectory, "The data directory is damaged: \(profile.rawValue)-ca.pem was not issued by root.pem.")
            }
            let privateKey = try key("\(profile.rawValue)-ca.key.sealed", label: "\(profile.rawValue) CA", for: certificate)
            issuers[profile] = try IssuingCA(profile: profile, certificate: certificate, key: privateKey)
        }
        return CAHierarchy(root: root, issuers: issuers)
    }

    private static func create(in directory: URL, masterKey: MasterKey, organisation: String, now: Timestamp) throws {
        func write(_ name: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws {
            try SecretFile.write(bytes, to: directory.appendingPathComponent(name).path, mode: mode)
        }
        let notBefore = now.date.addingTimeInterval(-300)
        /// A CA certificate valid for `years` from `notBefore`, signed by `issuerKey`.
        func caCertificate(
            key: SoftwareCAKey, subject: DistinguishedName, issuer: DistinguishedName, issuerKey: SoftwareCAKey,
            years: Double, extensions: Certificate.Extensions
        ) throws -> Certificate {
            try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(bytes: SerialNumberGenerator.randomSerialBytes()),
                publicKey: key.publicKey,
                notValidBefore: notBefore,
                notValidAfter: notBefore.addingTimeInterval(years * 365.25 * 86_400),
                issuer: issuer,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: Certificate.PrivateKey(issuerKey)
            )
        }

        let rootKey = SoftwareCAKey()
        let rootName = try DistinguishedName {
            OrganizationName(organisation)
            CommonName("\(organisation) Root CA")
        }
        let rootSKI = SubjectKeyIdentifier(hash: rootKey.publicKey)
        let root = try caCertificate(
            key: rootKey, subject: rootName, issuer: rootName, issuerKey: rootKey, years: 20,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                rootSKI
            }
        )
        try write("root.pem", Array(try root.serializeAsPEM().pemString.utf8))
        try write("root.key.sealed", try rootKey.sealed(label: "root CA", masterKey: masterKey), mode: 0o600)

        for profile in CertificateProfileKind.allCases {
            let key = SoftwareCAKey()
            let name = try DistinguishedName {
                OrganizationName(organisation)
                CommonName("\(organisation) \(profile.rawValue.capitalized) CA")
            }
            let certificate = try caCertificate(
                key: key, subject: name, issuer: rootName, issuerKey: rootKey, years: 10,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: key.publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: rootSKI.keyIdentifier)
                }
            )
            try write("\(profile.rawValue)-ca.pem", Array(try certificate.serializeAsPEM().pemString.utf8))
            try write("\(profile.rawValue)-ca.key.sealed", try key.sealed(label: "\(profile.rawValue) CA", masterKey: masterKey), mode: 0o600)
        }
    }
}
