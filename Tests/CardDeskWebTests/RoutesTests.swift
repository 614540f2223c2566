import CardDeskCore
import CardDeskServerKit
import CardDeskWeb
import CertificateAuthority
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SwiftASN1
import Testing
import X509

/// The HTTP application as the server builds it, over a real data directory (SQLite, a real PKI), driven through
/// Hummingbird's router test client.
@Suite("HTTP routes")
struct RoutesTests {
    static func withApp(
        publicURL: String = "http://pki.test", flags: [String: String] = [:],
        _ body: @escaping @Sendable (CardDeskInstance, any TestClientProtocol) async throws -> Void
    ) async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-web-\(UUID().uuidString)")
        let settings = try await ServerSettings.resolve(flags: flags.merging(["data": data.path, "public.url": publicURL]) { $1 }, environment: [:])
        let instance = try await CardDeskInstance.open(settings, logger: Logger(label: "test"), serving: true)
        let app = buildApplication(
            services: instance.webServices,
            configuration: .init(), logger: Logger(label: "test")
        )
        do {
            try await app.test(.router) { client in try await body(instance, client) }
        } catch {
            await instance.close()
            throw error
        }
        await instance.close()
        try? FileManager.default.removeItem(at: data)
    }

    static func issue(_ instance: CardDeskInstance, _ profile: CertificateProfileKind) async throws -> Certificate {
        let user = try User(id: try UserID("555254600106"), givenName: "Jane", familyName: "Doe", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")])
        if try await instance.store.user(id: user.id) == nil {
            try await instance.store.addUser(user, audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:\(user.id)", time: instance.clock.now()))
        }
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("x") }, privateKey: key, attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
        return try await instance.authority.issue(try await instance.authority.prepare(userID: user.id, profile: profile, csr: csr), actor: "test")
    }

    @Test("GET /health reports the database")
    func health() async throws {
        try await Self.withApp { _, client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                #expect(body.contains(#""status":"ok""#))
                #expect(body.contains(#""database":"sqlite""#))
            }
        }
    }

    @Test("CA certificates download as PEM and DER; unknown names get a clear 404")
    func caDownloads() async throws {
        try await Self.withApp { instance, client in
            try await client.execute(uri: "/pki/root.pem", method: .get) { response in
                #expect(response.status == .ok)
                let root = try Certificate(pemEncoded: String(buffer: response.body))
                #expect(root == instance.authority.hierarchy.root)
            }
            try await client.execute(uri: "/pki/signing-ca.crt", method: .get) { response in
                #expect(response.headers[.contentType] == "application/pkix-cert")
                let issuing = try Certificate(derEncoded: Array(buffer: response.body))
                #expect(issuing == instance.authority.hierarchy.issuer(.signing).certificate)
            }
            try await client.execute(uri: "/pki/ssh-ca.pem", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("use root, authentication-ca or signing-ca"))
            }
        }
    }

    @Test("GET /crl/<profile>.crl serves the signed CRL named in certificates")
    func crl() async throws {
        try await Self.withApp { instance, client in
            let certificate = try await Self.issue(instance, .authentication)
            let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
            _ = try await instance.authority.revoke(serial: serial, reason: .affiliationChanged, actor: "test")
            let distributionPoint = try #require(certificate.extensions.first { $0.oid == [2, 5, 29, 31] })
            #expect(String(decoding: distributionPoint.value, as: UTF8.self).hasSuffix("http://pki.test/crl/authentication.crl"))
            try await client.execute(uri: "/crl/authentication.crl", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/pkix-crl")
                let crl = try CertificateRevocationList(derEncoded: Array(buffer: response.body))
                #expect(crl.isSignatureValid(by: instance.authority.hierarchy.issuer(.authentication).certificate.publicKey))
                #expect(crl.entries.map(\.serial) == [serial])
                #expect(crl.entries.map(\.reason) == [.affiliationChanged])
            }
            try await client.execute(uri: "/crl/root.crl", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("OCSP over POST and GET; garbage gets malformedRequest; oversized bodies are refused")
    func ocsp() async throws {
        try await Self.withApp { instance, client in
            let certificate = try await Self.issue(instance, .signing)
            let request = try OCSPRequest(
                certIDs: [try OCSPCertID(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), issuer: instance.authority.hierarchy.issuer(.signing).certificate, hash: .sha256)],
                nonce: [1, 2, 3, 4, 5, 6, 7, 8]
            )
            let der = try request.derEncoded
            try await client.execute(uri: "/ocsp", method: .post, headers: [.contentType: "application/ocsp-request"], body: ByteBuffer(bytes: der)) { response in
                #expect(response.headers[.contentType] == "application/ocsp-response")
                let answer = try OCSPResponse(derEncoded: Array(buffer: response.body))
                #expect(answer.responses.map(\.status) == [.good])
                #expect(answer.nonce == request.nonce)
            }
            let encoded = Data(der).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            try await client.execute(uri: "/ocsp/\(encoded)", method: .get) { response in
                let answer = try OCSPResponse(derEncoded: Array(buffer: response.body))
                #expect(answer.responses.map(\.status) == [.good])
            }
            // Lower-case escapes are escapes too; a broken escape or one that is not UTF-8 is a malformed request.
            try await client.execute(uri: "/ocsp/\(encoded.replacingOccurrences(of: "%2F", with: "%2f").replacingOccurrences(of: "%2B", with: "%2b"))", method: .get) { response in
                let answer = try OCSPResponse(derEncoded: Array(buffer: response.body))
                #expect(answer.responses.map(\.status) == [.good])
            }
            for broken in ["\(encoded)%2", "\(encoded)%zz", "%FF\(encoded)"] {
                try await client.execute(uri: "/ocsp/\(broken)", method: .get) { response in
                    let answer = try OCSPResponse(derEncoded: Array(buffer: response.body))
                    #expect(answer.status == .malformedRequest, "\(broken.suffix(6))")
                }
            }
            try await client.execute(uri: "/ocsp", method: .post, body: ByteBuffer(string: "hello")) { response in
                let answer = try OCSPResponse(derEncoded: Array(buffer: response.body))
                #expect(answer.status == .malformedRequest)
            }
            try await client.execute(uri: "/ocsp", method: .post, body: ByteBuffer(bytes: [UInt8](repeating: 0x30, count: 9000))) { response in
                #expect(response.status == .contentTooLarge)
            }
        }
    }

    @Test("RFC 5019 caching: OCSP over GET (no nonce) and CRLs carry ETag, Last-Modified, Expires and a max-age up to nextUpdate; a CRL the client has gets 304; nonce and POST answers are not cached")
    func caching() async throws {
        #expect(HTTPDate.string(Timestamp(secondsSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT", "RFC 9110's example")
        try await Self.withApp { instance, client in
            let certificate = try await Self.issue(instance, .authentication)
            let issuer = instance.authority.hierarchy.issuer(.authentication).certificate
            let plain = try OCSPRequest(certIDs: [try OCSPCertID(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), issuer: issuer)])
            let encoded = Data(try plain.derEncoded).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            func maxAge(_ response: TestResponse) -> Int? {
                response.headers[.cacheControl]?.split(separator: ",").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
                    .first { $0.hasPrefix("max-age=") }.flatMap { Int($0.dropFirst("max-age=".count)) }
            }
            try await client.execute(uri: "/ocsp/\(encoded)", method: .get) { response in
                #expect(response.status == .ok)
                let answer = try OCSPResponse(derEncoded: Array(buffer: response.body))
                let nextUpdate = try #require(answer.responses.first?.nextUpdate)
                #expect(response.headers[.eTag]?.hasPrefix("\"") == true)
                #expect(response.headers[.expires] == HTTPDate.string(nextUpdate))
                #expect(response.headers[.lastModified] == HTTPDate.string(try #require(answer.producedAt)))
                let age = try #require(maxAge(response))
                #expect(age > 3500 && age <= 3600, "max-age runs to nextUpdate (one hour): \(age)")
                #expect(response.headers[.cacheControl]?.contains("public") == true)
            }
            let withNonce = try OCSPRequest(certIDs: plain.certIDs, nonce: [9, 8, 7, 6, 5, 4, 3, 2])
            let nonceEncoded = Data(try withNonce.derEncoded).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            try await client.execute(uri: "/ocsp/\(nonceEncoded)", method: .get) { response in
                #expect(response.headers[.cacheControl] == "no-cache" && response.headers[.eTag] == nil, "an answer to one nonce is for that request only")
            }
            try await client.execute(uri: "/ocsp", method: .post, body: ByteBuffer(bytes: try plain.derEncoded)) { response in
                #expect(response.headers[.cacheControl] == "no-cache")
            }

            let first = try await client.execute(uri: "/crl/authentication.crl", method: .get)
            let etag = try #require(first.headers[.eTag])
            let crl = try CertificateRevocationList(derEncoded: Array(buffer: first.body))
            #expect(first.headers[.lastModified] == HTTPDate.string(crl.thisUpdate) && first.headers[.expires] == HTTPDate.string(crl.nextUpdate))
            #expect(maxAge(first) == 300)
            try await client.execute(uri: "/crl/authentication.crl", method: .get, headers: [.ifNoneMatch: etag]) { response in
                #expect(response.status == .notModified)
                #expect(response.body.readableBytes == 0)
                #expect(response.headers[.eTag] == etag)
            }
            // A revocation makes a new CRL: the old ETag no longer matches.
            _ = try await instance.authority.revoke(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), reason: .superseded, actor: "test")
            let renewed = try await client.execute(uri: "/crl/authentication.crl", method: .get, headers: [.ifNoneMatch: etag])
            #expect(renewed.status == .ok)
            #expect(renewed.headers[.eTag] != etag)
            #expect(try CertificateRevocationList(derEncoded: Array(buffer: renewed.body)).entries.count == 1)
        }
    }
}
