import CardDeskCore
import CardDeskStore
import CardDeskTestSupport
import CertificateAuthority
import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@Suite("CRL")
struct CRLTests {
    @Test("A CRL lists revoked certificates with reasons, is signed by its CA, and its number grows")
    func crlContents() async throws {
        try await TestPKI.with { pki in
            let issuer = pki.hierarchy.issuer(.signing).certificate
            let empty = try await pki.authority.currentCRL(.signing)
            #expect(empty.entries.isEmpty)
            #expect(empty.crlNumber == 1)
            #expect(empty.isSignatureValid(by: issuer.publicKey))
            #expect(!empty.isSignatureValid(by: pki.hierarchy.issuer(.authentication).certificate.publicKey))
            #expect(empty.issuer == issuer.subject)
            #expect(empty.authorityKeyIdentifier.map { $0[...] } == (try issuer.extensions.subjectKeyIdentifier?.keyIdentifier))
            #expect(empty.nextUpdate == TestPKI.referenceTime.adding(seconds: 86_400))
            // Nothing changed: the same CRL is served again.
            #expect(try await pki.authority.currentCRL(.signing) == empty)

            let first = try await pki.issue(.signing)
            let second = try await pki.issue(.signing)
            let other = try await pki.issue(.authentication)
            let firstSerial = SerialNumber(bytes: Array(first.serialNumber.bytes))
            let secondSerial = SerialNumber(bytes: Array(second.serialNumber.bytes))
            _ = try await pki.authority.revoke(serial: firstSerial, reason: .keyCompromise, actor: "test")
            _ = try await pki.authority.revoke(serial: secondSerial, reason: .unspecified, actor: "test")
            _ = try await pki.authority.revoke(serial: SerialNumber(bytes: Array(other.serialNumber.bytes)), reason: .superseded, actor: "test")

            let crl = try await pki.authority.currentCRL(.signing)
            #expect(crl.crlNumber == 2)
            #expect(crl.isSignatureValid(by: issuer.publicKey))
            #expect(Set(crl.entries) == [
                RevokedCertificate(serial: firstSerial, revokedAt: TestPKI.referenceTime, reason: .keyCompromise),
                RevokedCertificate(serial: secondSerial, revokedAt: TestPKI.referenceTime, reason: .unspecified),
            ])
            // Round trip through DER and PEM.
            #expect(try CertificateRevocationList(derEncoded: crl.derEncoded) == crl)
            #expect(crl.pemEncoded.hasPrefix("-----BEGIN X509 CRL-----"))
            let authCRL = try await pki.authority.currentCRL(.authentication)
            #expect(authCRL.entries.map(\.reason) == [.superseded])
        }
    }

    @Test("Tampering with a CRL breaks its signature")
    func tamperedCRL() async throws {
        try await TestPKI.with { pki in
            let certificate = try await pki.issue(.signing)
            _ = try await pki.authority.revoke(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), reason: .keyCompromise, actor: "test")
            var der = try await pki.authority.currentCRL(.signing).derEncoded
            // Change a byte of the revoked serial inside the signed part.
            let serialBytes = Array(certificate.serialNumber.bytes)
            let index = try #require(der.firstRange(of: serialBytes)?.lowerBound)
            der[index + 5] ^= 0xFF
            let tampered = try CertificateRevocationList(derEncoded: der)
            #expect(!tampered.isSignatureValid(by: pki.hierarchy.issuer(.signing).certificate.publicKey))
        }
    }
}

@Suite("OCSP responder")
struct OCSPResponderTests {
    @Test("good, revoked with time and reason, unknown; nonce echoed; SHA-1 and SHA-256 CertIDs", arguments: [OCSPCertID.HashAlgorithm.sha1, .sha256])
    func statuses(hash: OCSPCertID.HashAlgorithm) async throws {
        try await TestPKI.with { pki in
            let issuer = pki.hierarchy.issuer(.authentication).certificate
            let good = try await pki.issue(.authentication)
            let revoked = try await pki.issue(.authentication)
            let revokedSerial = SerialNumber(bytes: Array(revoked.serialNumber.bytes))
            _ = try await pki.authority.revoke(serial: revokedSerial, reason: .superseded, actor: "test")
            let ids = try [
                OCSPCertID(serial: SerialNumber(bytes: Array(good.serialNumber.bytes)), issuer: issuer, hash: hash),
                OCSPCertID(serial: revokedSerial, issuer: issuer, hash: hash),
                OCSPCertID(serial: try SerialNumber(hex: "1234"), issuer: issuer, hash: hash),
            ]
            let nonce = Array((0..<16).map { UInt8($0 * 7) })
            let request = try OCSPRequest(certIDs: ids, nonce: nonce)
            let response = try OCSPResponse(derEncoded: try await pki.responder.respond(to: try request.derEncoded))

            #expect(response.status == .successful)
            #expect(try response.isSignedByDelegate(of: issuer))
            #expect(response.responses.map(\.certID) == ids)
            #expect(response.responses.map(\.status) == [.good, .revoked(at: TestPKI.referenceTime, reason: .superseded), .unknown])
            #expect(response.responses.allSatisfy { $0.nextUpdate == TestPKI.referenceTime.adding(seconds: 3600) })
            #expect(response.nonce == request.nonce)
            #expect(response.producedAt == TestPKI.referenceTime)
        }
    }

    @Test("A certificate asked about under the wrong issuer is unknown; a foreign CA is unauthorized")
    func wrongIssuer() async throws {
        try await TestPKI.with { pki in
            let certificate = try await pki.issue(.signing)
            let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
            let underAuthentication = try OCSPRequest(certIDs: [OCSPCertID(serial: serial, issuer: pki.hierarchy.issuer(.authentication).certificate)])
            let answer = try OCSPResponse(derEncoded: try await pki.responder.respond(to: try underAuthentication.derEncoded))
            #expect(answer.responses.map(\.status) == [.unknown])

            let other = try await TestPKI.make()
            let foreign = try OCSPRequest(certIDs: [OCSPCertID(serial: serial, issuer: other.hierarchy.issuer(.signing).certificate)])
            await other.close()
            let refused = try OCSPResponse(derEncoded: try await pki.responder.respond(to: try foreign.derEncoded))
            #expect(refused.status == .unauthorized)
            #expect(refused.responses.isEmpty)
        }
    }

    @Test("Malformed requests get malformedRequest, never a crash")
    func malformed() async throws {
        try await TestPKI.with { pki in
            for body in [[], [0x30], [0x30, 0x00], [0x04, 0x01, 0xFF], Array(repeating: 0x30, count: 300)] as [[UInt8]] {
                let response = try OCSPResponse(derEncoded: try await pki.responder.respond(to: body))
                #expect(response.status == .malformedRequest)
            }
            let tooMany = try OCSPRequest(certIDs: (1...40).map { try OCSPCertID(serial: SerialNumber(bytes: [UInt8($0)]), issuer: pki.hierarchy.root) })
            #expect(try OCSPResponse(derEncoded: try await pki.responder.respond(to: try tooMany.derEncoded)).status == .malformedRequest)
        }
    }

    @Test("RFC 5019 questions get the answer signed at issuance; a revocation here is in the very next answer; half the validity later it is signed again")
    func presignedAnswers() async throws {
        try await TestPKI.with { pki in
            let clock = TestClock(TestPKI.referenceTime)
            // This responder is the CA's listener, as in a server: issuance and revocation reach it at once.
            let responder = OCSPResponder(hierarchy: pki.hierarchy, status: pki.store, clock: clock, validitySeconds: 3600)
            let authority = CertificateAuthority(
                hierarchy: pki.hierarchy, profiles: pki.authority.profiles, urls: pki.authority.urls, storage: pki.store, clock: clock, listener: responder
            )
            let issuer = pki.hierarchy.issuer(.authentication).certificate
            let certificate = try await TestPKI.issue(.authentication, by: authority, user: pki.user)
            let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
            // Signed when issued, before any question, and stored for every instance.
            let stored = try #require(try await pki.store.presignedAnswer(serial: serial))
            #expect(stored.status == .good && stored.thisUpdate == clock.now())
            #expect(stored.refreshAfter == clock.now().adding(seconds: 1800) && stored.nextUpdate == clock.now().adding(seconds: 3600))
            let question = try OCSPRequest(certIDs: [OCSPCertID(serial: serial, issuer: issuer)]).derEncoded
            clock.advance(seconds: 60)
            #expect(try await responder.respond(to: question) == stored.der, "the pre-signed answer, byte for byte")
            let good = try OCSPResponse(derEncoded: stored.der)
            #expect(try good.responses.first?.status == .good && good.isSignedByDelegate(of: issuer))
            // With a nonce, every answer is its own; a SHA-256 CertID is answered too (signed live).
            let withNonce = try OCSPRequest(certIDs: [OCSPCertID(serial: serial, issuer: issuer)], nonce: [1, 2, 3, 4, 5, 6, 7, 8]).derEncoded
            #expect(try await responder.respond(to: withNonce) != responder.respond(to: withNonce))
            let sha256 = try OCSPRequest(certIDs: [OCSPCertID(serial: serial, issuer: issuer, hash: .sha256)]).derEncoded
            #expect(try OCSPResponse(derEncoded: try await responder.respond(to: sha256)).responses.first?.status == .good)

            // Revoked: the very next answer says so, and the stored answer is the revoked one.
            _ = try await authority.revoke(serial: serial, reason: .keyCompromise, actor: "test")
            let revokedAt = clock.now()
            let revoked = try OCSPResponse(derEncoded: try await responder.respond(to: question))
            #expect(revoked.responses.first?.status == .revoked(at: revokedAt, reason: .keyCompromise))
            #expect(try await pki.store.presignedAnswer(serial: serial)?.der == revoked.derEncoded)
            #expect(try await responder.respond(to: question) == revoked.derEncoded)

            // Half the validity later the answer is due: the refresher signs it again before nextUpdate.
            clock.advance(seconds: 1800)
            #expect(try await responder.refreshDue() == 1)
            let refreshed = try #require(try await pki.store.presignedAnswer(serial: serial))
            #expect(refreshed.thisUpdate == clock.now() && refreshed.der != revoked.derEncoded)
            let served = try OCSPResponse(derEncoded: try await responder.respond(to: question))
            #expect(served.derEncoded == refreshed.der)
            #expect(served.responses.first?.status == .revoked(at: revokedAt, reason: .keyCompromise))
            #expect(try served.responses.first?.thisUpdate == clock.now() && served.isSignedByDelegate(of: issuer))
            #expect(try await responder.refreshDue() == 0, "nothing else is due")
            // An answer about an expired certificate is not signed again: it goes.
            clock.advance(seconds: 86_400 * 365 * 4)
            #expect(try await responder.refreshDue() == 0)
            #expect(try await pki.store.presignedAnswer(serial: serial) == nil)
        }
    }

    @Test("Another process's revocation: an instance drops the answer it holds once it sees the revocation in the store")
    func revocationFromAnotherInstance() async throws {
        try await TestPKI.with { pki in
            let clock = TestClock(TestPKI.referenceTime)
            // A second instance on the same store: not the CA's listener, so it learns of revocations only by following.
            let other = OCSPResponder(hierarchy: pki.hierarchy, status: pki.store, clock: clock, validitySeconds: 3600)
            let following = Task { await other.followRevocations(every: .milliseconds(20)) }
            defer { following.cancel() }
            let issuer = pki.hierarchy.issuer(.signing).certificate
            let certificate = try await pki.issue(.signing)
            let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
            let question = try OCSPRequest(certIDs: [OCSPCertID(serial: serial, issuer: issuer)]).derEncoded
            try await Task.sleep(for: .milliseconds(100))
            #expect(try OCSPResponse(derEncoded: try await other.respond(to: question)).responses.first?.status == .good)
            // Held in memory now: the same bytes again without the store's status.
            #expect(try await other.respond(to: question) == other.respond(to: question))
            _ = try await pki.authority.revoke(serial: serial, reason: .affiliationChanged, actor: "test")
            var status: OCSPResponse.CertStatus?
            for _ in 0..<100 {
                status = try OCSPResponse(derEncoded: try await other.respond(to: question)).responses.first?.status
                if status != .good { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(status == .revoked(at: TestPKI.referenceTime, reason: .affiliationChanged), "seen within a second")
        }
    }
}
