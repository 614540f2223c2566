import CardDeskCore
public import X509

/// A connection to one smartcard: what the renewal flow, the agent and the RA need from a card, and nothing of how
/// the card is reached.
///
/// Implementations: `VirtualCard` (a file with real card semantics) today; a PC/SC backend speaking PIV
/// (NIST SP 800-73-4 APDUs: VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, GENERAL AUTHENTICATE,
/// GENERATE ASYMMETRIC KEY PAIR, GET/PUT DATA) and a PKCS#11 backend (C_Login, C_GenerateKeyPair, C_Sign,
/// C_CreateObject) later. Callers never see APDUs, and no method returns private key material.
///
/// Rules every implementation keeps:
/// - signing needs the PIN verified in this session; a new session starts unverified;
/// - a wrong PIN costs a try; at zero the card is locked until a PUK reset; the counters survive power loss;
/// - generating keys, installing certificates and resetting the PIN each need an `AdminAuthorisation` from the
///   server for that operation, answered to a challenge the card issued;
/// - a card that is removed fails every call with `.cardRemoved`; nothing is left half-written on it.
public protocol SmartcardSession: Sendable {
    /// The card's serial number (the PIV CHUID / card UUID on a real card).
    func serial() async throws -> String
    func pinState() async throws -> PINState

    /// Checks the passcode. Throws `.wrongPasscode` (with the tries left), `.cardLocked` at zero.
    func verifyPIN(_ pin: String) async throws
    func changePIN(current: String, new: String) async throws
    /// Resets the PIN with the PUK (the PUK is held by the server and never shown to the user).
    func unblockPIN(puk: String, newPIN: String) async throws
    /// Sets a new PIN and restores its retry counter, authorised by the server for this card (`.resetPIN`): the
    /// self-service unlock. A card whose PUK is exhausted is blocked for good and refuses.
    func resetPIN(newPIN: String, authorisation: AdminAuthorisation) async throws

    /// A fresh single-use challenge for the next administrative operation.
    func adminChallenge() async throws -> [UInt8]
    /// Generates a key pair in `slot`; returns its public key.
    func generateKeyPair(in slot: CardSlot, algorithm: CardKeyAlgorithm, authorisation: AdminAuthorisation) async throws -> Certificate.PublicKey
    /// Installs a certificate into `slot`, moving the key from `keyFrom` in the same step when given.
    /// The certificate's public key must match the key it will sit with.
    func installCertificate(_ der: [UInt8], into slot: CardSlot, keyFrom: CardSlot?, authorisation: AdminAuthorisation) async throws

    /// Signs `data` with the key in `slot` (ECDSA with SHA-256, or RSA PKCS#1 v1.5 with SHA-256). Needs a verified PIN.
    func sign(_ data: [UInt8], with slot: CardSlot) async throws -> Certificate.Signature
    func publicKey(in slot: CardSlot) async throws -> Certificate.PublicKey?
    func certificate(in slot: CardSlot) async throws -> Certificate?
}
