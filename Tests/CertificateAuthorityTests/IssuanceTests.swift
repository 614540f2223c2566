import CardDeskCore
import CardDeskStore
import CertificateAuthority
import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1
import Testing
import X509

@Suite("Issuance")
struct IssuanceTests {
    @Test("An authentication certificate follows its profile and chains to the root")
    func authenticationProfile() async throws {
        try await TestPKI.with { pki in
            let certificate = try await pki.issue(.authentication, key: CSRs.rsa2048)
            let issuer = pki.hierarchy.issuer(.authentication).certificate

            // The subject comes from the user record, never from the CSR.
            #expect(certificate.subject.description == "CN=555254600106_Jane_Doe,OU=People,O=RBQ")
            #expect(certificate.issuer == issuer.subject)
            let extensions = certificate.extensions
            let keyUsage = try #require(try extensions.keyUsage)
            #expect(keyUsage.digitalSignature && !keyUsage.nonRepudiation && !keyUsage.keyCertSign)
            #expect(extensions.first { $0.oid == .X509ExtensionID.keyUsage }?.critical == true)
            let eku = try #require(try extensions.extendedKeyUsage)
            #expect(Array(eku) == [.clientAuth, ExtendedKeyUsage.Usage(oid: CertificateProfile.smartcardLogon)])
            #expect(try extensions.basicConstraints == .notCertificateAuthority)
            // The key identifier is the certificate's own key's (RFC 5280 method 1); the other extensions, the same in
            // every certificate of the profile, are made once per CA, in this order.
            #expect(try extensions.subjectKeyIdentifier == SubjectKeyIdentifier(hash: certificate.publicKey))
            #expect(extensions.map(\.oid) == [
                .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.basicConstraints,
                .X509ExtensionID.subjectKeyIdentifier, .X509ExtensionID.authorityKeyIdentifier, .X509ExtensionID.authorityInformationAccess,
                [2, 5, 29, 31], [2, 5, 29, 32],
            ])
            #expect(try extensions.authorityKeyIdentifier?.keyIdentifier == issuer.extensions.subjectKeyIdentifier?.keyIdentifier)
            let aia = try #require(try extensions.authorityInformationAccess)
            #expect(Array(aia).map(\.location) == [
                .uniformResourceIdentifier("http://ca.test:8080/ocsp"),
                .uniformResourceIdentifier("http://ca.test:8080/pki/authentication-ca.crt"),
            ])
            let crlDP = try #require(extensions.first { $0.oid == [2, 5, 29, 31] })
            #expect(String(decoding: crlDP.value, as: UTF8.self).contains("http://ca.test:8080/crl/authentication.crl"))
            let policies = try #require(extensions.first { $0.oid == [2, 5, 29, 32] })
            var expectedPolicy = DER.Serializer()
            try expectedPolicy.serialize(CertificateProfile.examplePolicyOID)
            #expect(Array(policies.value).suffix(expectedPolicy.serializedBytes.count) == expectedPolicy.serializedBytes[...])

            // Three years, to the second, from the (backdated) start.
            #expect(certificate.notValidAfter.timeIntervalSince1970 == Double(TestPKI.referenceTime.secondsSince1970 + 1095 * 86_400))

            var verifier = Verifier(rootCertificates: CertificateStore([pki.hierarchy.root])) {
                RFC5280Policy(fixedValidationTime: TestPKI.referenceTime.dateForTests.addingTimeInterval(60))
            }
            let result = await verifier.validate(leaf: certificate, intermediates: CertificateStore([issuer]))
            guard case .validCertificate(let chain) = result else {
                Issue.record("the certificate must chain to the root: \(result)")
                return
            }
            #expect(chain.count == 3)
        }
    }

    @Test("A signing certificate has nonRepudiation only, from the signing CA")
    func signingProfile() async throws {
        try await TestPKI.with { pki in
            let certificate = try await pki.issue(.signing)
            let another = try await pki.issue(.signing)
            #expect(try certificate.extensions.subjectKeyIdentifier == SubjectKeyIdentifier(hash: certificate.publicKey))
            #expect(try another.extensions.subjectKeyIdentifier == SubjectKeyIdentifier(hash: another.publicKey))
            #expect(try certificate.extensions.subjectKeyIdentifier != another.extensions.subjectKeyIdentifier)
            #expect(certificate.extensions.map(\.oid) == [
                .X509ExtensionID.keyUsage, .X509ExtensionID.basicConstraints, .X509ExtensionID.subjectKeyIdentifier,
                .X509ExtensionID.authorityKeyIdentifier, .X509ExtensionID.authorityInformationAccess, [2, 5, 29, 31], [2, 5, 29, 32],
            ])
            let keyUsage = try #require(try certificate.extensions.keyUsage)
            #expect(keyUsage.nonRepudiation && !keyUsage.digitalSignature)
            #expect(try certificate.extensions.extendedKeyUsage == nil)
            #expect(certificate.issuer == pki.hierarchy.issuer(.signing).certificate.subject)
            #expect(pki.hierarchy.issuer(.signing).certificate.publicKey.isValidSignature(certificate.signature, for: certificate))
            #expect(!pki.hierarchy.issuer(.authentication).certificate.publicKey.isValidSignature(certificate.signature, for: certificate))
        }
    }

    @Test("Serials are 20 random positive bytes, never repeated, and every issued certificate is stored")
    func serials() async throws {
        try await TestPKI.with { pki in
            var serials = Set<SerialNumber>()
            for _ in 0..<40 {
                let certificate = try await pki.issue(.authentication)
                let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
                #expect(serial.bytes.count == 20)
                #expect(serial.bytes[0] & 0x80 == 0)
                serials.insert(serial)
                let stored = try #require(try await pki.store.certificate(serial: serial))
                #expect(stored.der == (try certificate.derEncoded()))
                #expect(stored.userID == pki.user.id)
            }
            #expect(serials.count == 40)
            #expect(try await pki.store.certificateCount() == 40)
        }
    }

    @Test("A prepared issuance is issued once")
    func issueOnce() async throws {
        try await TestPKI.with { pki in
            let prepared = try await pki.authority.prepare(userID: pki.user.id, profile: .signing, csr: try CSRs.make(key: .init(P256.Signing.PrivateKey())))
            _ = try await pki.authority.issue(prepared, actor: "test")
            await #expect(throws: (any Error).self) { try await pki.authority.issue(prepared, actor: "test") }
            #expect(try await pki.store.certificateCount() == 1)
        }
    }

    /// Each refusal: the code, and nothing written (no certificate, no audit entry).
    static let refusals: [(String, CardDeskError.Code, @Sendable (TestPKI) async throws -> Void)] = [
        ("a CSR whose signature does not match its key", .badProofOfPossession, { pki in
            var der = try CSRs.der(try CSRs.make(key: .init(P256.Signing.PrivateKey())))
            der[der.count - 1] ^= 0x01
            _ = try await pki.authority.prepare(userID: pki.user.id, profile: .authentication, csr: try CertificateRequestCheck.parse(der))
        }),
        ("an RSA-3072 key", .unsupportedKey, { pki in
            let key = Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits3072))
            _ = try await pki.authority.prepare(userID: pki.user.id, profile: .authentication, csr: try CSRs.make(key: key))
        }),
        ("a P-384 key", .unsupportedKey, { pki in
            _ = try await pki.authority.prepare(userID: pki.user.id, profile: .signing, csr: try CSRs.make(key: .init(P384.Signing.PrivateKey())))
        }),
        ("a malformed DER body", .malformedRequest, { pki in
            let der = try CSRs.der(try CSRs.make(key: .init(P256.Signing.PrivateKey())))
            _ = try CertificateRequestCheck.parse(Array(der.dropLast(7)))
        }),
        ("an unknown user", .unknownUser, { pki in
            _ = try await pki.authority.prepare(userID: try UserID("123456789012"), profile: .signing, csr: try CSRs.make(key: .init(P256.Signing.PrivateKey())))
        }),
    ]

    @Test("Bad requests are refused with a clear reason and write nothing", arguments: 0..<refusals.count)
    func refusal(index: Int) async throws {
        let (what, code, attempt) = Self.refusals[index]
        try await TestPKI.with { pki in
            let headBefore = try await pki.store.auditHead()
            let error = await #expect(throws: CardDeskError.self, "\(what) must be refused") { try await attempt(pki) }
            #expect(error?.code == code, "\(what)")
            #expect((error?.reason.count ?? 0) > 20, "the reason must be a sentence a person can act on")
            #expect(try await pki.store.certificateCount() == 0)
            #expect(try await pki.store.auditHead()?.sequence == headBefore?.sequence)
        }
    }

    @Test("Issuance is audited with the profile and serial, and the chain verifies")
    func audited() async throws {
        try await TestPKI.with { pki in
            let certificate = try await pki.issue(.authentication)
            let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
            let entries = LockedList<AuditEntry>()
            try await pki.store.forEachAuditEntry { entries.append($0) }
            let last = try #require(entries.elements.last)
            #expect(last.event.action == .certificateIssue)
            #expect(last.event.details.contains("serial=\(serial.hex)"))
            #expect(last.event.details.contains("profile=authentication"))
            #expect(try await pki.store.verifyAuditChain() == .intact(entries: 2))
        }
    }
}

import Synchronization

/// A list that escaping, concurrent closures can append to.
final class LockedList<Element: Sendable>: Sendable {
    private let storage = Mutex<[Element]>([])
    func append(_ element: Element) { storage.withLock { $0.append(element) } }
    var elements: [Element] { storage.withLock { $0 } }
}

extension Timestamp {
    var dateForTests: Date { Date(timeIntervalSince1970: TimeInterval(secondsSince1970)) }
}
