import CardDeskCore
import Crypto
public import X509

/// A connection to one smartcard: what the renewal flow, the unlock flow, the agent and card issuing need from a
/// card, in the terms of the PIV standard (NIST SP 800-73-4) that every supported card speaks, and nothing of how
/// the card is reached.
///
/// Implementation: `PIVCardSession`, over any APDU transport (PC/SC for real cards and for the virtual card in
/// vpcd's reader; the virtual card in this process). Callers never see APDUs, and no method returns private key
/// material.
///
/// What every card does, as PIV requires:
/// - signing needs the PIN verified in this card session (a reset or a new connection starts unverified);
/// - a wrong PIN costs a try; at zero the PIN is blocked until RESET RETRY COUNTER with the PUK; the PUK has its own
///   counter and, at zero, the card is blocked for good; the counters survive power loss;
/// - generating keys and writing certificates need the management key (9B) authenticated in this card session;
///   CardDesk keeps each card's management key on the server, which answers the card's witness through the agent;
/// - keys never move between slots: a renewal generates the new key in the slot it replaces;
/// - a card that is taken out fails every call with `.cardRemoved`.
public protocol SmartcardSession: Sendable {
    /// CardDesk's serial number for the card: "CD" and the last 8 bytes of the GUID in its CHUID, in hexadecimal
    /// (OpenSC shows the same 16 digits as the token serial).
    func serial() async throws -> String
    func pinState() async throws -> PINState

    /// Checks the passcode. Throws `.wrongPasscode` (with the tries left), `.cardLocked` at zero.
    func verifyPIN(_ pin: String) async throws
    func changePIN(current: String, new: String) async throws
    /// RESET RETRY COUNTER: a new PIN and a full retry counter, with the PUK.
    func unblockPIN(puk: String, newPIN: String) async throws
    func changePUK(current: String, new: String) async throws

    /// The algorithm of the card's management key when the card says (YubiKey metadata); nil when it does not.
    func managementKeyAlgorithm() async throws -> ManagementKey.Algorithm?
    /// Management-key mutual authentication, first half: the card's witness, encrypted under its management key.
    func administrationWitness(algorithm: ManagementKey.Algorithm) async throws -> [UInt8]
    /// Second half: the witness decrypted by the key's holder (the server) and the holder's challenge; the card's
    /// encryption of that challenge comes back. No other card command may come between the two halves.
    func completeAdministration(algorithm: ManagementKey.Algorithm, witness: [UInt8], challenge: [UInt8]) async throws -> [UInt8]
    /// Generates a key pair in `slot`, replacing the key there (its certificate stays until a new one is written).
    func generateKeyPair(in slot: CardSlot, algorithm: CardKeyAlgorithm) async throws -> Certificate.PublicKey
    /// Writes a certificate into the certificate object of `slot`.
    func writeCertificate(_ der: [UInt8], into slot: CardSlot) async throws
    /// The card's attestation that the key in `slot` was generated on it (a certificate, with the card's attestation
    /// certificate that signed it), or nil for a card that cannot attest.
    func attestation(of slot: CardSlot) async throws -> (certificate: [UInt8], issuer: [UInt8])?

    /// Signs `data` with the key in `slot` (ECDSA with SHA-256, or RSA PKCS#1 v1.5 with SHA-256). Needs a verified PIN.
    func sign(_ data: [UInt8], with slot: CardSlot) async throws -> Certificate.Signature
    func certificate(in slot: CardSlot) async throws -> Certificate?

    /// Forgets the PIN and management-key authentication (a card reset).
    func reset() async throws
}

extension SmartcardSession {
    /// Management-key mutual authentication: the card's encrypted witness goes to `answer` (the server), which
    /// returns it decrypted with its own challenge; the card's encryption of that challenge comes back.
    public func authenticateAdministration(
        algorithm: ManagementKey.Algorithm, answer: (_ encryptedWitness: [UInt8]) async throws -> (witness: [UInt8], challenge: [UInt8])
    ) async throws -> [UInt8] {
        let (witness, challenge) = try await answer(try await administrationWitness(algorithm: algorithm))
        return try await completeAdministration(algorithm: algorithm, witness: witness, challenge: challenge)
    }

    /// Whether the key in `slot` is the one `certificate` certifies: the card signs a probe and the certificate's key
    /// checks it (PIV has no command to read a slot's public key). Needs a verified PIN.
    public func holdsKey(of certificate: Certificate, in slot: CardSlot) async throws -> Bool {
        let probe = Array("carddesk-key-probe".utf8)
        let signature = try await sign(probe, with: slot)
        let algorithm: Certificate.SignatureAlgorithm = P256.Signing.PublicKey(certificate.publicKey) != nil ? .ecdsaWithSHA256 : .sha256WithRSAEncryption
        return certificate.publicKey.isValidSignature(signature.rawRepresentation, for: probe, signatureAlgorithm: algorithm)
    }
}
