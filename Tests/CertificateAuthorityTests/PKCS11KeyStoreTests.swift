import CardDeskCore
import CertificateAuthority
import CPKCS11
import Crypto
import _CryptoExtras
import Foundation
import PKCS11
import Synchronization
import Testing
import X509

/// SoftHSMv2 for this test process: its own configuration and token directory, set before the module is first loaded
/// (SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`), with the tokens the suite needs made up front.
enum SoftHSM {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"
    static let pin = "4711-test"
    /// "carddesk-pin" is only ever opened with a wrong PIN: PKCS#11 logs a whole process in per token, so a token
    /// another test logged into would accept any PIN after that.
    static let tokens = ["carddesk-ca", "carddesk-root", "carddesk-other", "carddesk-pin"]

    /// Made once per process; throws (failing the test, never skipping it) when SoftHSMv2 is not installed.
    static let ready: Result<URL, ToolFailure> = {
        guard FileManager.default.fileExists(atPath: module) else {
            return .failure(ToolFailure("SoftHSMv2 is not installed (\(module)): apt-get install softhsm2"))
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-softhsm-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("tokens"), withIntermediateDirectories: true)
            let configuration = folder.appendingPathComponent("softhsm2.conf")
            try "directories.tokendir = \(folder.path)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n".write(to: configuration, atomically: true, encoding: .utf8)
            setenv("SOFTHSM2_CONF", configuration.path, 1)
            for label in tokens {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "5678-so"]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else { return .failure(ToolFailure("softhsm2-util --init-token \(label) failed")) }
            }
            return .success(folder)
        } catch {
            return .failure(ToolFailure("SoftHSM setup: \(error)"))
        }
    }()

    static func store(token: String = "carddesk-ca", root: String? = nil, keyType: CAKeyType = .p256, pin: String = pin) throws -> PKCS11KeyStore {
        _ = try ready.get()
        return try PKCS11KeyStore(module: module, tokenLabel: token, pin: pin, rootTokenLabel: root, keyType: keyType)
    }
}

struct ToolFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("CA keys in an HSM (SoftHSMv2 over PKCS#11)", .serialized)
struct PKCS11KeyStoreTests {
    @Test("The hierarchy made in the token: keys sensitive and not extractable, no key material in pki/; issuance, CRL and OCSP sign through C_Sign")
    func hierarchyInToken() async throws {
        let keys = try SoftHSM.store(root: "carddesk-root")
        try await TestPKI.with(keys: keys) { pki in
            let directory = pki.folder.appendingPathComponent("pki")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            #expect(files == ["authentication-ca.key.pkcs11", "authentication-ca.pem", "root.key.pkcs11", "root.pem", "signing-ca.key.pkcs11", "signing-ca.pem"])
            for file in files where file.hasSuffix(".pkcs11") {
                let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                #expect(!text.contains("PRIVATE") && text.contains("\"token\""), "\(file) is a reference, not a key")
            }
            // Every private key in both tokens: sensitive, never extractable, and never readable.
            for token in [keys.token, keys.rootToken] {
                try token.withSession { session throws(CardDeskError) in
                    let privateKeys = try session.find(objectClass: CK_OBJECT_CLASS(CKO_PRIVATE_KEY))
                    #expect(privateKeys.count == (token.label == "carddesk-root" ? 1 : 2))
                    for key in privateKeys {
                        #expect(try session.flag(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), of: key) == true)
                        #expect(try session.flag(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), of: key) == false)
                        #expect(try session.flag(CK_ATTRIBUTE_TYPE(CKA_NEVER_EXTRACTABLE), of: key) == true)
                        #expect(try session.attribute(CK_ATTRIBUTE_TYPE(CKA_VALUE), of: key) == nil, "the key's value stays in the token")
                    }
                }
            }
            // Issuance, revocation, CRL and OCSP, all signed in the token.
            let issuer = pki.hierarchy.issuer(.authentication).certificate
            let certificate = try await pki.issue(.authentication)
            #expect(issuer.publicKey.isValidSignature(certificate.signature, for: certificate))
            _ = try await pki.authority.revoke(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), reason: .keyCompromise, actor: "test")
            let crl = try await pki.authority.currentCRL(.authentication)
            #expect(crl.isSignatureValid(by: issuer.publicKey))
            let request = try OCSPRequest(certIDs: [OCSPCertID(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), issuer: issuer)])
            let response = try OCSPResponse(derEncoded: try await pki.responder.respond(to: try request.derEncoded))
            #expect(response.status == .successful)
            #expect(try response.isSignedByDelegate(of: issuer))

            // Opened again from pki/ (as serve does): the same keys, found by their IDs.
            let reopened = try CAHierarchy.load(directory: directory, keys: try SoftHSM.store(root: "carddesk-root"))
            #expect(reopened.issuer(.signing).certificate == pki.hierarchy.issuer(.signing).certificate)
            // A sealed-file store on a PKI made in a token refuses, and says where the keys are.
            let sealed = #expect(throws: CardDeskError.self) { try CAHierarchy.load(directory: directory, keys: SealedFileKeyStore(masterKey: pki.masterKey)) }
            #expect(sealed?.reason.contains("PKCS#11") == true)
            // Another token than the one the keys are in: refused by name.
            let other = #expect(throws: CardDeskError.self) { try CAHierarchy.load(directory: directory, keys: try SoftHSM.store(token: "carddesk-other")) }
            #expect(other?.reason.contains("carddesk-ca") == true)
        }
    }

    @Test("CA keys of every type the ceremony offers sign certificates, CRLs and responder certificates", arguments: [CAKeyType.p384, .rsa3072])
    func otherKeyTypes(keyType: CAKeyType) async throws {
        try await TestPKI.with(keys: try SoftHSM.store(token: "carddesk-other", keyType: keyType)) { pki in
            let issuer = pki.hierarchy.issuer(.signing).certificate
            #expect(issuer.signatureAlgorithm == (keyType == .p384 ? .ecdsaWithSHA384 : .sha256WithRSAEncryption))
            let certificate = try await pki.issue(.signing)
            #expect(certificate.signatureAlgorithm == issuer.signatureAlgorithm)
            #expect(issuer.publicKey.isValidSignature(certificate.signature, for: certificate))
            #expect(try await pki.authority.currentCRL(.signing).isSignatureValid(by: issuer.publicKey))
            let request = try OCSPRequest(certIDs: [OCSPCertID(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), issuer: issuer)])
            let response = try OCSPResponse(derEncoded: try await pki.responder.respond(to: try request.derEncoded))
            #expect(response.responses.first?.status == .good)
            #expect(try response.isSignedByDelegate(of: issuer))
        }
    }

    @Test("A wrong PIN is a configuration error that names the PIN, not a crash")
    func wrongPIN() async throws {
        let keys = try SoftHSM.store(token: "carddesk-pin", pin: "not-the-pin")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-pin-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let refused = #expect(throws: CardDeskError.self) {
            try CAHierarchy.loadOrCreate(directory: folder.appendingPathComponent("pki"), keys: keys, organisation: "T", now: TestPKI.referenceTime)
        }
        #expect(refused?.code == .configuration)
        #expect(refused?.reason.contains("PIN") == true)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("pki").path), "nothing half-made")
    }

    @Test("Signing runs concurrently on pooled sessions: 200 signatures at once all verify (P-256, P-384, RSA-2048, RSA-3072)", arguments: CAKeyType.allCases)
    func concurrentSigning(keyType: CAKeyType) async throws {
        let keys = try SoftHSM.store(token: "carddesk-other", keyType: keyType)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-pool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = try keys.generate(.issuing(.signing), in: folder)
        let algorithm: Certificate.SignatureAlgorithm = switch keyType {
        case .p256: .ecdsaWithSHA256
        case .p384: .ecdsaWithSHA384
        case .rsa2048, .rsa3072: .sha256WithRSAEncryption
        }
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let message = Array("message \(index)".utf8)
                    let signature = try await key.signAsynchronously(bytes: message, signatureAlgorithm: algorithm).rawRepresentation
                    switch keyType {
                    case .p256:
                        return try P256.Signing.PublicKey(key.publicKey)!.isValidSignature(P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: message))
                    case .p384:
                        return try P384.Signing.PublicKey(key.publicKey)!.isValidSignature(P384.Signing.ECDSASignature(derRepresentation: signature), for: SHA384.hash(data: message))
                    case .rsa2048, .rsa3072:
                        let rsa = try #require(_RSA.Signing.PublicKey(key.publicKey))
                        #expect(rsa.keySizeInBits == (keyType == .rsa2048 ? 2048 : 3072))
                        return rsa.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 200 && results.allSatisfy { $0 })
    }
}
