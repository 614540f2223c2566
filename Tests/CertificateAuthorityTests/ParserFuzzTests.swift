import CardDeskCore
import CertificateAuthority
import Crypto
import Foundation
import Testing
import X509

/// Fuzz-style tests: truncated, bit-flipped and random DER fed to every parser that reads untrusted input.
/// Every input must either parse or throw a `CardDeskError`; none may crash.
@Suite("Parser fuzzing")
struct ParserFuzzTests {
    /// A deterministic generator, so a failure can be reproduced from its seed.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutations(of valid: [UInt8], seed: UInt64) -> [[UInt8]] {
        var generator = SplitMix64(state: seed)
        var inputs: [[UInt8]] = (0..<valid.count).map { Array(valid.prefix($0)) }
        for _ in 0..<400 {
            var flipped = valid
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                flipped[Int.random(in: 0..<flipped.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            }
            inputs.append(flipped)
        }
        for _ in 0..<400 {
            inputs.append((0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            // Random bytes behind a plausible SEQUENCE header reach deeper into the parsers.
            let body = (0..<Int.random(in: 0...120, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            inputs.append([0x30, UInt8(body.count)] + body)
        }
        return inputs
    }

    @Test("CSR parser")
    func csr() throws {
        let valid = try CSRs.der(try CSRs.make(key: .init(P256.Signing.PrivateKey())))
        var accepted = 0
        for input in Self.mutations(of: valid, seed: 1) {
            do {
                let csr = try CertificateRequestCheck.parse(input)
                accepted += 1
                // Whatever parses must still go through the proof-of-possession check without crashing.
                _ = try? CertificateRequestCheck.checkProofOfPossession(csr)
            } catch let error as CardDeskError {
                // A flipped algorithm or curve identifier can make a well-formed request for an unsupported key.
                #expect(error.code == .malformedRequest || error.code == .unsupportedKey)
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        #expect(accepted < 450, "most mutations must be refused")
    }

    @Test("OCSP request parser and responder")
    func ocspRequest() async throws {
        try await TestPKI.with { pki in
            let certificate = try await pki.issue(.authentication)
            let valid = try OCSPRequest(
                certIDs: [try OCSPCertID(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), issuer: pki.hierarchy.issuer(.authentication).certificate)],
                nonce: Array(repeating: 0xAB, count: 16)
            ).derEncoded
            for input in Self.mutations(of: valid, seed: 2) {
                do {
                    _ = try OCSPRequest(derEncoded: input)
                } catch let error as CardDeskError {
                    #expect(error.code == .malformedRequest)
                } catch {
                    Issue.record("unexpected error type: \(error)")
                }
            }
            // The responder answers every one of them with a well-formed response.
            for input in Self.mutations(of: valid, seed: 3).prefix(200) {
                let response = try OCSPResponse(derEncoded: try await pki.responder.respond(to: input))
                #expect([.successful, .malformedRequest, .unauthorized].contains(response.status))
            }
        }
    }

    @Test("CRL and OCSP response parsers")
    func crlAndResponse() async throws {
        try await TestPKI.with { pki in
            let certificate = try await pki.issue(.signing)
            _ = try await pki.authority.revoke(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), reason: .keyCompromise, actor: "test")
            let crl = try await pki.authority.currentCRL(.signing).derEncoded
            for input in Self.mutations(of: crl, seed: 4) {
                do { _ = try CertificateRevocationList(derEncoded: input) } catch let error as CardDeskError {
                    #expect(error.code == .malformedRequest)
                } catch {
                    Issue.record("unexpected error type: \(error)")
                }
            }
            let request = try OCSPRequest(certIDs: [try OCSPCertID(serial: SerialNumber(bytes: Array(certificate.serialNumber.bytes)), issuer: pki.hierarchy.issuer(.signing).certificate)])
            let response = try await pki.responder.respond(to: try request.derEncoded)
            for input in Self.mutations(of: response, seed: 5) {
                do { _ = try OCSPResponse(derEncoded: input) } catch let error as CardDeskError {
                    #expect(error.code == .malformedRequest)
                } catch {
                    Issue.record("unexpected error type: \(error)")
                }
            }
        }
    }
}
