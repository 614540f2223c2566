public import CardDeskCore
import Crypto
public import Foundation
import SwiftASN1
public import X509

/// The PKI: a root CA and one issuing CA per certificate profile (authentication, signing), as the national PKI has.
///
/// It lives in `<data>/pki/`: each CA's certificate as PEM, and its key as its `CAKeyStore` keeps it (sealed under
/// the master key, or a reference to the key in an HSM). It is created whole or not at all (built in a scratch
/// folder, then renamed into place).
public struct CAHierarchy: Sendable {
    public let root: Certificate
    public let issuers: [CertificateProfileKind: IssuingCA]

    public func issuer(_ profile: CertificateProfileKind) -> IssuingCA { issuers[profile]! }

    /// Whether `<directory>` already holds a PKI.
    public static func exists(in directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("root.pem").path)
    }

    /// Loads the PKI from `directory`, creating it first if the directory does not exist.
    /// Returns whether it was created, so the caller can audit that.
    public static func loadOrCreate(
        directory: URL, keys: any CAKeyStore, organisation: String, now: Timestamp, step: (String) -> Void = { _ in }
    ) throws -> (hierarchy: CAHierarchy, created: Bool) {
        let manager = FileManager.default
        if manager.fileExists(atPath: directory.path) {
            return (try load(directory: directory, keys: keys), false)
        }
        let scratch = directory.deletingLastPathComponent().appendingPathComponent(".pki-\(UUID().uuidString)")
        try SecretFile.createDirectory(scratch.path)
        defer { try? manager.removeItem(at: scratch) }
        try create(in: scratch, keys: keys, organisation: organisation, now: now, step: step)
        do {
            try manager.moveItem(at: scratch, to: directory)
        } catch where manager.fileExists(atPath: directory.path) {
            // Another process created it first: use theirs.
            return (try load(directory: directory, keys: keys), false)
        }
        return (try load(directory: directory, keys: keys), true)
    }

    /// With the CA keys sealed under `masterKey` (the embedded default).
    public static func loadOrCreate(directory: URL, masterKey: MasterKey, organisation: String, now: Timestamp) throws -> (hierarchy: CAHierarchy, created: Bool) {
        try loadOrCreate(directory: directory, keys: SealedFileKeyStore(masterKey: masterKey), organisation: organisation, now: now)
    }

    public static func load(directory: URL, masterKey: MasterKey) throws -> CAHierarchy {
        try load(directory: directory, keys: SealedFileKeyStore(masterKey: masterKey))
    }

    /// Loads and cross-checks an existing PKI. Any missing or damaged file is reported by name.
    public static func load(directory: URL, keys: any CAKeyStore) throws -> CAHierarchy {
        if let other = CAKeyStoreMarks.mismatch(in: directory, for: keys) {
            throw CardDeskError(.configuration, "The CA keys of \(directory.path) are kept in \(other), but the configured CA key store is \(keys.description). Configure the store the PKI was made with (ca.keys).")
        }
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
        func key(_ role: CAKeyRole, for certificate: Certificate) throws -> Certificate.PrivateKey {
            let key = try keys.open(role, in: directory)
            guard key.publicKey == certificate.publicKey else {
                throw CardDeskError(.corruptDataDirectory, "The data directory is damaged: \(keys.keyFile(role)) does not belong to its certificate.")
            }
            return key
        }

        let root = try certificate("root.pem")
        if keys.needsAtStart(.root) {
            _ = try key(.root, for: root)
        } else {
            _ = try read(keys.keyFile(.root))
        }
        var issuers: [CertificateProfileKind: IssuingCA] = [:]
        for profile in CertificateProfileKind.allCases {
            let certificate = try certificate("\(profile.rawValue)-ca.pem")
            guard certificate.issuer == root.subject, root.publicKey.isValidSignature(certificate.signature, for: certificate) else {
                throw CardDeskError(.corruptDataDirectory, "The data directory is damaged: \(profile.rawValue)-ca.pem was not issued by root.pem.")
            }
            let privateKey = try key(.issuing(profile), for: certificate)
            issuers[profile] = try IssuingCA(profile: profile, certificate: certificate, key: privateKey)
        }
        return CAHierarchy(root: root, issuers: issuers)
    }

    private static func create(in directory: URL, keys: any CAKeyStore, organisation: String, now: Timestamp, step: (String) -> Void) throws {
        func write(_ name: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws {
            try SecretFile.write(bytes, to: directory.appendingPathComponent(name).path, mode: mode)
        }
        let notBefore = now.date.addingTimeInterval(-300)
        func hex(_ serial: Certificate.SerialNumber) -> String { Hex.string(serial.bytes, lowercase: true) }
        /// A CA certificate valid for `years` from `notBefore`, signed by `issuerKey`.
        func caCertificate(
            key: Certificate.PrivateKey, subject: DistinguishedName, issuer: DistinguishedName, issuerKey: Certificate.PrivateKey,
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
                signatureAlgorithm: try IssuingCA.signatureAlgorithm(for: issuerKey.publicKey),
                extensions: extensions,
                issuerPrivateKey: issuerKey
            )
        }

        let rootKey = try keys.generate(.root, in: directory)
        step("root CA key generated in \(keys.location(of: .root))")
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
        step("root CA certificate made: \(root.subject), serial \(hex(root.serialNumber))")

        for profile in CertificateProfileKind.allCases {
            let key = try keys.generate(.issuing(profile), in: directory)
            step("\(profile.rawValue) CA key generated in \(keys.location(of: .issuing(profile)))")
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
            step("\(profile.rawValue) CA certificate made: \(certificate.subject), serial \(hex(certificate.serialNumber)), signed by the root CA")
        }
    }
}
