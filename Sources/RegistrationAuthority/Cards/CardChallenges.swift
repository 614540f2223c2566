import CardDeskCore
import CardDeskStore
import CertificateAuthority
import Crypto
import Foundation
import X509

/// What sign-in and renewal share: single-use challenges a card signs, bearer tokens stored only as hashes, and
/// checking a card's signature against one of its certificates.
public enum CardChallenges {
    /// How long a challenge may be used, in seconds.
    static let lifetime: Int64 = 120

    /// A fresh challenge for `purpose` ("login", "renewal"): 32 random bytes, base64url, single use.
    static func issue(purpose: String, store: any RenewalStore, clock: any WallClock) async throws -> String {
        let nonce = randomToken()
        try await store.addChallenge(nonce, purpose: purpose, expiresAt: clock.now().adding(seconds: lifetime))
        return nonce
    }

    /// 32 random bytes, base64url: session tokens, hand-over secrets, CSRF values.
    public static func randomToken() -> String {
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// SHA-256 (hex) of a token: what the store keeps instead of the token.
    public static func hash(_ token: String) -> String {
        Hex.string(SHA256.hash(data: Array(token.utf8)), lowercase: true)
    }

    /// What sign-in, renewal and a change of unlock address share: the card proves it is present and its holder typed
    /// the passcode. Uses up `challenge` (single use, for `purpose`), then finds the card's good authentication
    /// certificate whose key made `signature` over `message`: the one in force, or the unfinished renewal's newly
    /// written one (with `anyKeyPair`, the signing certificates count too: a renewal resumes on whichever pair is whole). Expiry is left to the caller, which words its own advice. `retry` ends the expired-challenge message.
    static func signer(
        of signature: [UInt8], over message: [UInt8], challenge: String, purpose: String, cardSerial: String, retry: String,
        store: any RenewalStore, now: Timestamp, anyKeyPair: Bool = false
    ) async throws -> (card: CardRecord, inForce: CardInForce, signer: CertificateRecord) {
        let challenge = try Identifiers.token(challenge)
        let signature = try Identifiers.signature(signature)
        guard try await store.consumeChallenge(challenge, purpose: purpose, now: now) else {
            throw CardDeskError(.authenticationFailed, "The sign-in challenge has expired or was already used. \(retry)")
        }
        let inForce = try await CardInForce.load(cardSerial, store: store)
        let candidates = inForce.candidates(profiles: anyKeyPair ? Set(CertificateProfileKind.allCases) : [.authentication])
        guard let signer = try candidates.first(where: { try verify(signature, over: message, by: $0) }) else {
            throw CardDeskError(.authenticationFailed, "The card's signature does not verify with its authentication certificate: this is not the card it claims to be.")
        }
        return (inForce.card, inForce, signer)
    }

    /// Whether the key of `record`'s certificate made `signature` over `message`.
    static func verify(_ signature: [UInt8], over message: [UInt8], by record: CertificateRecord) throws -> Bool {
        let certificate = try Certificate(derEncoded: record.der)
        let algorithm: Certificate.SignatureAlgorithm = P256.Signing.PublicKey(certificate.publicKey) != nil ? .ecdsaWithSHA256 : .sha256WithRSAEncryption
        return certificate.publicKey.isValidSignature(signature, for: message, signatureAlgorithm: algorithm)
    }
}
