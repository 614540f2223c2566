public import CardDeskCore
public import Foundation
public import X509

/// Which CA a key belongs to.
public enum CAKeyRole: Hashable, Sendable, CustomStringConvertible {
    case root
    case issuing(CertificateProfileKind)

    public static var all: [CAKeyRole] { [.root] + CertificateProfileKind.allCases.map { .issuing($0) } }

    /// The stem of the CA's files in `pki/` ("root", "authentication-ca").
    var fileStem: String {
        switch self {
        case .root: "root"
        case .issuing(let profile): "\(profile.rawValue)-ca"
        }
    }

    public var description: String {
        switch self {
        case .root: "root CA"
        case .issuing(let profile): "\(profile.rawValue) CA"
        }
    }
}

/// Where the CA private keys live: sealed files in the data directory (the embedded default) or an HSM (PKCS#11).
///
/// Issuance, CRLs and OCSP see only `Certificate.PrivateKey`; the store makes keys (the key ceremony) and opens them.
/// Each store leaves in `pki/` what it needs to find a key again: the sealed key itself, or a reference to the key in
/// the token (never key material). A data directory made with one store refuses to open with the other.
public protocol CAKeyStore: Sendable {
    /// For messages and the audit log: "sealed files", "PKCS#11 token \"CardDesk CA\"".
    var description: String { get }
    /// The file in `pki/` that marks a key of this store for `role` ("root.key.sealed", "root.key.pkcs11").
    func keyFile(_ role: CAKeyRole) -> String
    /// Makes a new key for `role` and records in `directory` how to find it.
    func generate(_ role: CAKeyRole, in directory: URL) throws -> Certificate.PrivateKey
    /// The key for `role`, as recorded in `directory`.
    func open(_ role: CAKeyRole, in directory: URL) throws -> Certificate.PrivateKey
    /// Whether serving needs the key of `role` (an offline root need not be reachable).
    func needsAtStart(_ role: CAKeyRole) -> Bool
    /// Where the key of `role` lives, for the ceremony's record.
    func location(of role: CAKeyRole) -> String
}

extension CAKeyStore {
    public func needsAtStart(_ role: CAKeyRole) -> Bool { role != .root }
    public func location(of role: CAKeyRole) -> String { description }
}

/// Every store the data directory may have been made with, to name the one it was.
enum CAKeyStoreMarks {
    static let suffixes = ["sealed": "sealed files (the master key)", "pkcs11": "a PKCS#11 token"]

    /// What the directory's key files say about the store it was made with, when that is not `store`.
    static func mismatch(in directory: URL, for store: any CAKeyStore) -> String? {
        let expected = store.keyFile(.issuing(.authentication))
        guard !FileManager.default.fileExists(atPath: directory.appendingPathComponent(expected).path) else { return nil }
        for (suffix, name) in suffixes {
            let other = "\(CAKeyRole.issuing(.authentication).fileStem).key.\(suffix)"
            if other != expected, FileManager.default.fileExists(atPath: directory.appendingPathComponent(other).path) {
                return name
            }
        }
        return nil
    }
}

/// The embedded default: each CA key sealed under the master key in `pki/<ca>.key.sealed`.
public struct SealedFileKeyStore: CAKeyStore {
    let masterKey: MasterKey

    public init(masterKey: MasterKey) {
        self.masterKey = masterKey
    }

    public var description: String { "sealed files" }

    public func keyFile(_ role: CAKeyRole) -> String { "\(role.fileStem).key.sealed" }

    public func generate(_ role: CAKeyRole, in directory: URL) throws -> Certificate.PrivateKey {
        let key = SoftwareCAKey()
        try SecretFile.write(try key.sealed(label: role.description, masterKey: masterKey), to: directory.appendingPathComponent(keyFile(role)).path, mode: 0o600)
        return Certificate.PrivateKey(key)
    }

    public func open(_ role: CAKeyRole, in directory: URL) throws -> Certificate.PrivateKey {
        let url = directory.appendingPathComponent(keyFile(role))
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw CardDeskError(.corruptDataDirectory, "The data directory is damaged: \(url.path) is missing. Restore it from a backup; do not delete the pki folder, or every issued certificate loses its CA.")
        }
        return Certificate.PrivateKey(try SoftwareCAKey(sealed: Array(data), label: role.description, masterKey: masterKey))
    }

    /// The root key is opened at start too: it proves the master key is the right one.
    public func needsAtStart(_ role: CAKeyRole) -> Bool { true }
}
