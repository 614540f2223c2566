import CardDeskStore
import CertificateAuthority
import Crypto
import _CryptoExtras
import Foundation
@testable import RegistrationAuthority
import SwiftASN1
import Testing
import X509

@Suite("Card challenges: encoding and keys")
struct CardChallengesTests {
    @Test("Base64url is RFC 4648's URL alphabet without padding, both ways, and only one text decodes to given bytes")
    func base64URL() throws {
        var generator = SystemRandomNumberGenerator()
        for count in 0...70 {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let text = CardChallenges.base64URL(bytes)
            #expect(text == expected)
            #expect(CardChallenges.bytes(base64URL: text) == bytes)
        }
        #expect(CardChallenges.base64URL([0xFB, 0xFF, 0xBF]) == "-_-_")
        // Padding, the plain alphabet's + and /, other characters, impossible lengths, and bits set past the last byte.
        for bad in ["AA==", "+/+/", "AB C", "A", "AAAAA", "AB", "AAB", "é", "AA\n"] {
            #expect(CardChallenges.bytes(base64URL: bad) == nil, "\(bad)")
        }
        #expect(CardChallenges.bytes(base64URL: "AA") == [0])
        #expect(CardChallenges.bytes(base64URL: "AAA") == [0, 0])
        // A challenge altered in its last character's spare bits is not the same challenge.
        // (40 bytes: the last character carries 2 bits and 4 spare ones, so it is one of A, Q, g, w.)
        let challenge = CardChallenges.issue(purpose: "login", key: KeyedMAC(key: SymmetricKey(size: .bits256)), clock: SystemClock())
        #expect(challenge.utf8.count == 54)
        #expect(CardChallenges.bytes(base64URL: challenge)?.count == 40)
        let spareBitSet: [Character: String] = ["A": "B", "Q": "R", "g": "h", "w": "x"]
        let altered = String(challenge.dropLast()) + (try #require(spareBitSet[challenge.last!]))
        #expect(CardChallenges.bytes(base64URL: altered) == nil)
        #expect(CardChallenges.randomToken() != CardChallenges.randomToken())
        #expect(CardChallenges.randomToken().utf8.count == 43)
    }

    @Test("A key set up once gives HMAC-SHA256's code for every message, one after another and at once")
    func keyedMAC() async throws {
        for keySize in [16, 32, 64, 65, 100] {
            let key = SymmetricKey(data: (0..<keySize).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) })
            let keyed = KeyedMAC(key: key)
            let messages: [[UInt8]] = [[], [0], Array("carddesk-challenge:login:".utf8), (0..<1_000).map { UInt8(truncatingIfNeeded: $0) }]
            // Twice over: a code must not change the set-up key the next one starts from.
            for message in messages + messages {
                #expect(Array(keyed.code(for: message)) == Array(HMAC<SHA256>.authenticationCode(for: message, using: key)))
            }
            let codes = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<64 {
                    group.addTask {
                        let message = messages[index % messages.count]
                        return Array(keyed.code(for: message)) == Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(codes.count == 64 && codes.allSatisfy { $0 })
        }
    }

    @Test("A certificate's public key is read from its DER alone, as swift-certificates reads it: v3 and v1, P-256 and RSA")
    func publicKeyOfCertificate() throws {
        let p256 = P256.Signing.PrivateKey()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let keys: [(Certificate.PrivateKey, Certificate.SignatureAlgorithm)] = [
            (Certificate.PrivateKey(p256), .ecdsaWithSHA256), (Certificate.PrivateKey(rsa), .sha256WithRSAEncryption),
        ]
        for (key, algorithm) in keys {
            for version in [Certificate.Version.v3, .v1] {
                let name = try DistinguishedName { CommonName("Key test") }
                let now = Date()
                let certificate = try Certificate(
                    version: version, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: now, notValidAfter: now + 3600,
                    issuer: name, subject: name, signatureAlgorithm: algorithm,
                    extensions: version == .v3 ? try Certificate.Extensions { try ExtendedKeyUsage([.clientAuth]) } : Certificate.Extensions(),
                    issuerPrivateKey: key
                )
                var serializer = DER.Serializer()
                try serializer.serialize(certificate)
                let der = serializer.serializedBytes
                #expect(try CardChallenges.publicKey(ofCertificate: der) == certificate.publicKey, "\(version) \(algorithm)")
            }
        }
        #expect(throws: (any Error).self) { try CardChallenges.publicKey(ofCertificate: [0x30, 0x03, 0x02, 0x01, 0x01]) }
        #expect(throws: (any Error).self) { try CardChallenges.publicKey(ofCertificate: []) }
        // Cut short anywhere, or with a length that runs past the end, is indefinite, or leaves the certificate's
        // fields outside it: refused, never read past the end.
        let p256Certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: Certificate.PrivateKey(p256).publicKey, notValidBefore: Date(), notValidAfter: Date() + 3600,
            issuer: try DistinguishedName { CommonName("Cut") }, subject: try DistinguishedName { CommonName("Cut") }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions(), issuerPrivateKey: Certificate.PrivateKey(p256)
        )
        var serializer = DER.Serializer()
        try serializer.serialize(p256Certificate)
        let der = serializer.serializedBytes
        for cut in stride(from: 0, to: der.count - 80, by: 7) {
            #expect(throws: (any Error).self, "cut at \(cut)") { try CardChallenges.publicKey(ofCertificate: Array(der.prefix(cut))) }
        }
        #expect(der[1] == 0x82)
        for length: [UInt8] in [[0x80], [0x83, 0x00, 0x01, 0x00], [0x81, 0x10], [0x85, 1, 2, 3, 4, 5], [0x82, 0xFF, 0xFF]] {
            #expect(throws: (any Error).self, "length \(length)") { try CardChallenges.publicKey(ofCertificate: [0x30] + length + der.dropFirst(4)) }
        }
    }
}
