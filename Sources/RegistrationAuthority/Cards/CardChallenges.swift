import CardDeskCore
import CardDeskStore
import CertificateAuthority
import Crypto
import Foundation
import Smartcard
import SwiftASN1
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
    static func issue(purpose: String, key: KeyedMAC, clock: any WallClock) -> String {
        let nonce = SecureRandom.bytes(16)
        let expiry = clock.now().adding(seconds: lifetime).millisecondsSince1970
        let expiryBytes = (0..<8).map { UInt8(truncatingIfNeeded: expiry >> (56 - 8 * $0)) }
        return base64URL(nonce + expiryBytes + mac(purpose: purpose, nonce + expiryBytes, key: key))
    }

    /// A challenge CardDesk gave out for `purpose` and that has not expired: what using it writes. Nil otherwise.
    static func check(_ challenge: String, purpose: String, key: KeyedMAC, now: Timestamp) -> ChallengeUse? {
        guard let bytes = bytes(base64URL: challenge), bytes.count == 40 else { return nil }
        let body = Array(bytes[0..<24])
        guard ConstantTime.equal(Array(bytes[24...]), mac(purpose: purpose, body, key: key)) else { return nil }
        let expiry = body[16..<24].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        guard expiry > now.millisecondsSince1970 else { return nil }
        return ChallengeUse(hash: hash(challenge), purpose: purpose, expiresAt: Timestamp(millisecondsSince1970: expiry), usedAt: now)
    }

    private static func mac(purpose: String, _ body: [UInt8], key: KeyedMAC) -> [UInt8] {
        Array(key.code(for: Array("carddesk-challenge:\(purpose):".utf8) + body).prefix(16))
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Base64url without padding (RFC 4648 §5).
    static func base64URL(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var group = UInt32(bytes[index]) << 16
            if count > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { group |= UInt32(bytes[index + 2]) }
            for position in 0...count { out.append(alphabet[Int(group >> (18 - 6 * position)) & 0x3F]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of base64url text without padding; nil for anything else (padding, other characters, a length no
    /// encoding has).
    static func bytes(base64URL text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        for character in text.utf8 {
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(character - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(character - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(character - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "_"): values.append(63)
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        // The bits past the last whole byte must be zero: one text per byte string.
        switch values.count % 4 {
        case 2: guard values[values.count - 1] & 0x0F == 0 else { return nil }
        case 3: guard values[values.count - 1] & 0x03 == 0 else { return nil }
        default: break
        }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var index = 0
        while index < values.count {
            let count = min(4, values.count - index)
            var group: UInt32 = 0
            for position in 0..<4 { group = group << 6 | (position < count ? UInt32(values[index + position]) : 0) }
            for position in 0..<(count - 1) { out.append(UInt8(truncatingIfNeeded: group >> (16 - 8 * position))) }
            index += 4
        }
        return out
    }

    /// 32 random bytes, base64url: session tokens, hand-over secrets, CSRF values.
    public static func randomToken() -> String {
        base64URL(SecureRandom.bytes(32))
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
        store: any RenewalStore, key: KeyedMAC, now: Timestamp, anyKeyPair: Bool = false, deferUse: Bool = false
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
        let publicKey = try publicKey(ofCertificate: record.der)
        let algorithm: Certificate.SignatureAlgorithm = P256.Signing.PublicKey(publicKey) != nil ? .ecdsaWithSHA256 : .sha256WithRSAEncryption
        return publicKey.isValidSignature(signature, for: message, signatureAlgorithm: algorithm)
    }

    /// The subject public key of a certificate this CA issued (read from the store), without parsing the rest of it
    /// (names, extensions): a card signs in and renews by its key alone; the caller has the record's other fields.
    static func publicKey(ofCertificate der: [UInt8]) throws -> Certificate.PublicKey {
        // Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, … }
        // TBSCertificate ::= SEQUENCE { version [0] EXPLICIT OPTIONAL, serialNumber, signature, issuer, validity,
        //                               subject, subjectPublicKeyInfo, … }
        // Stepped over by tag and length with the cards' TLV reader (no tree of the fields before the key is built:
        // parsing the whole certificate was 2-3 % of a sign-in); the key's own SEQUENCE is then parsed in full, as DER.
        let malformed = CardDeskError(.internalFailure, "A stored certificate is not a well-formed X.509 certificate.")
        guard let (certificate, _) = TLV.parseOne(der, at: 0), certificate.tag == 0x30,
              let (tbs, _) = TLV.parseOne(certificate.value, at: 0), tbs.tag == 0x30 else { throw malformed }
        let fields = tbs.value
        // serialNumber, signature, issuer, validity, subject (after the version, when there is one): then the key.
        var index = 0
        let skipped = TLV.parseOne(fields, at: 0)?.0.tag == 0xA0 ? 6 : 5
        for _ in 0..<skipped {
            guard let (_, next) = TLV.parseOne(fields, at: index) else { throw malformed }
            index = next
        }
        guard let (spki, end) = TLV.parseOne(fields, at: index), spki.tag == 0x30 else { throw malformed }
        return try Certificate.PublicKey(derEncoded: Array(fields[index..<end]))
    }
}
