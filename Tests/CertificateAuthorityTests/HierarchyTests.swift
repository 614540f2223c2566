import CardDeskCore
import CertificateAuthority
import Foundation
import Testing
import X509

@Suite("PKI hierarchy")
struct HierarchyTests {
    @Test("A root and two issuing CAs, reloaded identically; CA keys sealed on disk")
    func createAndReload() async throws {
        try await TestPKI.with { pki in
            let directory = pki.folder.appendingPathComponent("pki")
            let root = pki.hierarchy.root
            #expect(root.issuer == root.subject)
            #expect(try root.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 1))
            for profile in CertificateProfileKind.allCases {
                let issuing = pki.hierarchy.issuer(profile).certificate
                #expect(issuing.issuer == root.subject)
                #expect(try issuing.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
                #expect(root.publicKey.isValidSignature(issuing.signature, for: issuing))
            }
            let reloaded = try CAHierarchy.load(directory: directory, masterKey: pki.masterKey)
            #expect(reloaded.root == root)
            #expect(reloaded.issuer(.signing).certificate == pki.hierarchy.issuer(.signing).certificate)

            // Sealed keys: not PEM, not DER of a key, and only the owner may read them.
            for name in ["root.key.sealed", "authentication-ca.key.sealed", "signing-ca.key.sealed"] {
                let path = directory.appendingPathComponent(name).path
                let data = try #require(FileManager.default.contents(atPath: path))
                #expect(!String(decoding: data, as: UTF8.self).contains("PRIVATE KEY"))
                let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)
                #expect(mode.intValue == 0o600)
            }
        }
    }

    @Test("A wrong master key, a missing file or swapped keys are reported clearly")
    func damaged() async throws {
        try await TestPKI.with { pki in
            let directory = pki.folder.appendingPathComponent("pki")
            let wrong = try MasterKey(base64: MasterKey.generateBase64())
            let wrongKey = #expect(throws: CardDeskError.self) { try CAHierarchy.load(directory: directory, masterKey: wrong) }
            #expect(wrongKey?.code == .wrongMasterKey)

            let signingKey = directory.appendingPathComponent("signing-ca.key.sealed")
            let authenticationKey = directory.appendingPathComponent("authentication-ca.key.sealed")
            let saved = try Data(contentsOf: signingKey)
            try FileManager.default.removeItem(at: signingKey)
            let missing = #expect(throws: CardDeskError.self) { try CAHierarchy.load(directory: directory, masterKey: pki.masterKey) }
            #expect(missing?.code == .corruptDataDirectory)
            #expect(missing?.reason.contains("signing-ca.key.sealed") == true)

            // The authentication CA's key in the signing CA's place: the label bound into the seal refuses it.
            try FileManager.default.copyItem(at: authenticationKey, to: signingKey)
            let swapped = #expect(throws: CardDeskError.self) { try CAHierarchy.load(directory: directory, masterKey: pki.masterKey) }
            #expect(swapped?.code == .wrongMasterKey)
            try FileManager.default.removeItem(at: signingKey)
            try saved.write(to: signingKey)
            #expect(try CAHierarchy.load(directory: directory, masterKey: pki.masterKey).root == pki.hierarchy.root)
        }
    }
}
