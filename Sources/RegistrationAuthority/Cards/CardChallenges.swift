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
    /// The master key's derived key for the challenges' MACs.
    static let keyLabel = "card-challenges"

    /// A fresh challenge for `purpose` ("login", "renewal", "puk", "contacts"), valid `lifetime` seconds, single use.
    /// Nothing is stored: the challenge carries its expiry and a MAC of both (under `key`, from the master key, so every
    /// instance of the server can check it), and only a challenge that is used is written, in the transaction that
    /// uses it. An unauthenticated request for challenges writes nothing.
    static func issue(purpose: String, key: SymmetricKey, clock: any WallClock) -> String {
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let expiry = clock.now().adding(seconds: lifetime).millisecondsSince1970
        let expiryBytes = (0..<8).map { UInt8(truncatingIfNeeded: expiry >> (56 - 8 * $0)) }
        return base64URL(nonce + expiryBytes + mac(purpose: purpose, nonce + expiryBytes, key: key))
    }

    /// A challenge CardDesk gave out for `purpose` and that has not expired: what using it writes. Nil otherwise.
    static func check(_ challenge: String, purpose: String, key: SymmetricKey, now: Timestamp) -> ChallengeUse? {
        guard let bytes = Data(base64Encoded: base64(fromURL: challenge)).map(Array.init), bytes.count == 40 else { return nil }
        let body = Array(bytes[0..<24])
        guard ConstantTime.equal(Array(bytes[24...]), mac(purpose: purpose, body, key: key)) else { return nil }
        let expiry = body[16..<24].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        guard expiry > now.millisecondsSince1970 else { return nil }
        return ChallengeUse(hash: hash(challenge), purpose: purpose, expiresAt: Timestamp(millisecondsSince1970: expiry), usedAt: now)
    }

    private static func mac(purpose: String, _ body: [UInt8], key: SymmetricKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("carddesk-challenge:\(purpose):".utf8) + body, using: key)).prefix(16).map { $0 }
    }

    private static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    private static func base64(fromURL text: String) -> String {
        let plain = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        return plain + String(repeating: "=", count: (4 - plain.utf8.count % 4) % 4)
    }

    /// 32 random bytes, base64url: session tokens, hand-over secrets, CSRF values.
    public static func randomToken() -> String {
        base64URL((0..<32).map { _ in UInt8.random(in: 0...255) })
    }

    /// SHA-256 (hex) of a token: what the store keeps instead of the token.
    public static func hash(_ token: String) -> String {
        Hex.string(SHA256.hash(data: Array(token.utf8)), lowercase: true)
    }

    /// What sign-in, renewal and a change of unlock address share: the card proves it is present and its holder typed
    /// the passcode. Checks `challenge` (ours, for `purpose`, not expired), finds the card's good authentication
    /// certificate whose key made `signature` over `message`: the one in force, or the unfinished renewal's newly
    /// written one (with `anyKeyPair`, the signing certificates count too: a renewal resumes on whichever pair is
    /// whole), then uses the challenge up (single use: a second request with it is refused) — unless `deferUse`, when
    /// the caller writes `use` in its own transaction (sign-in, with the session). Expiry is left to the caller, which
    /// words its own advice. `retry` ends the expired-challenge message.
    static func signer(
        of signature: [UInt8], over message: [UInt8], challenge: String, purpose: String, cardSerial: String, retry: String,
        store: any RenewalStore, key: SymmetricKey, now: Timestamp, anyKeyPair: Bool = false, deferUse: Bool = false
    ) async throws -> (card: CardRecord, inForce: CardInForce, signer: CertificateRecord, use: ChallengeUse) {
        let challenge = try Identifiers.token(challenge)
        let signature = try Identifiers.signature(signature)
        guard let use = check(challenge, purpose: purpose, key: key, now: now) else { throw alreadyUsed(retry) }
        let inForce = try await CardInForce.load(cardSerial, store: store)
        let candidates = inForce.candidates(profiles: anyKeyPair ? Set(CertificateProfileKind.allCases) : [.authentication])
        guard let signer = try candidates.first(where: { try verify(signature, over: message, by: $0) }) else {
            throw CardDeskError(.authenticationFailed, "The card's signature does not verify with its authentication certificate: this is not the card it claims to be.")
        }
        if !deferUse {
            guard try await store.useChallenge(use) else { throw alreadyUsed(retry) }
        }
        return (inForce.card, inForce, signer, use)
    }

    /// The refusal of a challenge that is not ours, has expired, or was used (maybe by a request racing this one).
    static func alreadyUsed(_ retry: String) -> CardDeskError {
        CardDeskError(.authenticationFailed, "The sign-in challenge has expired or was already used. \(retry)")
    }

    /// Whether the key of `record`'s certificate made `signature` over `message`.
    static func verify(_ signature: [UInt8], over message: [UInt8], by record: CertificateRecord) throws -> Bool {
        let certificate = try Certificate(derEncoded: record.der)
        let algorithm: Certificate.SignatureAlgorithm = P256.Signing.PublicKey(certificate.publicKey) != nil ? .ecdsaWithSHA256 : .sha256WithRSAEncryption
        return certificate.publicKey.isValidSignature(signature, for: message, signatureAlgorithm: algorithm)
    }
}
