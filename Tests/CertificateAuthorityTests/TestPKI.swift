import CardDeskCore
import CardDeskStore
import CertificateAuthority
import Crypto
import _CryptoExtras
import Foundation
import Logging
import SwiftASN1
import X509

/// A real PKI in a temporary folder, a real SQLite store, and a CA with a fixed clock.
struct TestPKI {
    /// The reference time every CA test runs at: 2026-11-18T11:06:40Z.
    static let referenceTime = Timestamp(secondsSince1970: 1_795_000_000)

    let folder: URL
    let masterKey: MasterKey
    let hierarchy: CAHierarchy
    let store: SQLStore
    let authority: CertificateAuthority
    let responder: OCSPResponder
    let user: User

    /// - Parameter keys: where the CA keys are made (default: sealed files under a new master key).
    static func make(time: Timestamp = referenceTime, keys: (any CAKeyStore)? = nil) async throws -> TestPKI {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let masterKey = try MasterKey(base64: MasterKey.generateBase64())
        let (hierarchy, created) = try CAHierarchy.loadOrCreate(
            directory: folder.appendingPathComponent("pki"), keys: keys ?? SealedFileKeyStore(masterKey: masterKey), organisation: "Test Trust", now: time
        )
        precondition(created)
        let store = try await SQLStore.open(.sqlite(path: folder.appendingPathComponent("db.sqlite").path), logger: Logger(label: "test"), now: time, auditKey: masterKey.derivedKey(label: "audit-chain"))
        let user = try User(
            id: try UserID("555254600106"), givenName: "Jane", familyName: "Doe", organisation: "RBQ",
            roles: [try Role(parsing: "S0080:G0450:R5080@RBQ")]
        )
        try await store.addUser(user, audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:\(user.id)", time: time))
        let clock = FixedClock(time)
        let profiles = Dictionary(uniqueKeysWithValues: CertificateProfileKind.allCases.map { ($0, CertificateProfile(kind: $0)) })
        let responder = OCSPResponder(hierarchy: hierarchy, status: store, clock: clock)
        let authority = CertificateAuthority(
            hierarchy: hierarchy, profiles: profiles, urls: PKIURLs(base: "http://ca.test:8080/"), storage: store, clock: clock, listener: responder
        )
        return TestPKI(folder: folder, masterKey: masterKey, hierarchy: hierarchy, store: store, authority: authority, responder: responder, user: user)
    }

    func close() async {
        try? await store.close()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Runs `body` with a fresh PKI and always cleans up.
    static func with(keys: (any CAKeyStore)? = nil, _ body: (TestPKI) async throws -> Void) async throws {
        let pki = try await make(keys: keys)
        do {
            try await body(pki)
        } catch {
            await pki.close()
            throw error
        }
        await pki.close()
    }

    func issue(_ profile: CertificateProfileKind, key: Certificate.PrivateKey = Certificate.PrivateKey(P256.Signing.PrivateKey())) async throws -> Certificate {
        try await Self.issue(profile, by: authority, user: user, key: key)
    }

    static func issue(
        _ profile: CertificateProfileKind, by authority: CertificateAuthority, user: User, key: Certificate.PrivateKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
    ) async throws -> Certificate {
        let csr = try CSRs.make(key: key)
        return try await authority.issue(try await authority.prepare(userID: user.id, profile: profile, csr: csr), actor: "test")
    }
}

enum CSRs {
    /// A CSR whose subject a client chose; the CA must ignore it.
    static func make(key: Certificate.PrivateKey, subject: String = "Mallory Admin") throws -> CertificateSigningRequest {
        let algorithm: Certificate.SignatureAlgorithm = _RSA.Signing.PublicKey(key.publicKey) != nil ? .sha256WithRSAEncryption
            : P384.Signing.PublicKey(key.publicKey) != nil ? .ecdsaWithSHA384 : .ecdsaWithSHA256
        return try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName(subject); OrganizationName("Evil Corp") },
            privateKey: key,
            attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: algorithm
        )
    }

    static func der(_ csr: CertificateSigningRequest) throws -> [UInt8] {
        var coder = DER.Serializer()
        try coder.serialize(csr)
        return coder.serializedBytes
    }

    static let rsa2048 = Certificate.PrivateKey(try! _RSA.Signing.PrivateKey(keySize: .bits2048))
}

extension OCSPResponse {
    /// Signed by a delegated responder of `issuer` (RFC 6960 §4.2.2.2): the responder certificate sent with the
    /// response is issued by `issuer`, is for OCSP signing only, and its key (named by the ResponderID) signed the
    /// response; the issuing CA's own key did not.
    func isSignedByDelegate(of issuer: Certificate) throws -> Bool {
        guard certificates.count == 1, let responder = certificates.first else { return false }
        let usage = try responder.extensions.extendedKeyUsage
        let keyBits = Array(responder.publicKey.subjectPublicKeyInfoBytes)
        return responder.issuer == issuer.subject
            && issuer.publicKey.isValidSignature(responder.signature, for: responder)
            && usage?.contains(.ocspSigning) == true
            && responder.extensions.contains { $0.oid == [1, 3, 6, 1, 5, 5, 7, 48, 1, 5] }
            && responderKeyHash == Array(Insecure.SHA1.hash(data: keyBits))
            && isSignatureValid(by: responder.publicKey)
            && !isSignatureValid(by: issuer.publicKey)
    }
}
