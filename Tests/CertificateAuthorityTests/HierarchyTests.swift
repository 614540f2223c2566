import CardDeskCore
import CertificateAuthority
import Crypto
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

    @Test("The master key only derives keys: sealing uses a derived key, never the master key itself")
    func derivedSealingKey() throws {
        let base64 = MasterKey.generateBase64()
        let master = try MasterKey(base64: base64)
        let raw = SymmetricKey(data: try #require(Data(base64Encoded: base64)))
        let sealed = try master.seal(Array("a card's PUK".utf8), label: "card 1 PUK")
        let box = try AES.GCM.SealedBox(combined: sealed)
        #expect(throws: (any Error).self) { try AES.GCM.open(box, using: raw, authenticating: Array("card 1 PUK".utf8)) }
        let opened = try AES.GCM.open(box, using: master.derivedKey(label: "sealing"), authenticating: Array("card 1 PUK".utf8))
        #expect(Array(opened) == Array("a card's PUK".utf8))
        #expect(try master.open(sealed, label: "card 1 PUK") == Array("a card's PUK".utf8))
        // Each purpose has its own key.
        let purposes = ["sealing", "audit-chain", "one-time-codes"].map { master.derivedKey(label: $0).withUnsafeBytes { Array($0) } }
        #expect(Set(purposes).count == 3)
        #expect(!purposes.contains(raw.withUnsafeBytes { Array($0) }))
        // Data sealed by CardDesk 0.5 (under the master key itself) still opens.
        let legacy = try AES.GCM.seal(Array("old".utf8), using: raw, authenticating: Array("root CA".utf8)).combined!
        #expect(try master.open(Array(legacy), label: "root CA") == Array("old".utf8))
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
