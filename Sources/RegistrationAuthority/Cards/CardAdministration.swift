public import CardDeskCore
import CardDeskStore
public import CertificateAuthority
public import Smartcard

/// The server's half of PIV card administration: it holds each card's management key (sealed) and answers the
/// card's witness, which the agent relays, so that the card lets the agent generate keys and write certificates.
/// The key itself never leaves the server. Callers answer only for a card with an operation in progress.
public enum CardAdministration {
    /// Seals a management key for the card record: the algorithm byte, then the key.
    public static func seal(_ key: ManagementKey, serial: String, masterKey: MasterKey) throws -> [UInt8] {
        try masterKey.seal([key.algorithm.rawValue] + key.bytes, label: label(serial))
    }

    public static func managementKey(of card: CardRecord, masterKey: MasterKey) throws -> ManagementKey {
        let opened = try masterKey.open(card.managementKeySealed, label: label(card.serial))
        guard let first = opened.first, let algorithm = ManagementKey.Algorithm(rawValue: first),
              let key = try? ManagementKey(algorithm: algorithm, bytes: Array(opened.dropFirst())) else {
            throw CardDeskError(.unsupportedCard, "Card \(card.serial) was issued for an earlier CardDesk card format and cannot be administered: ask your Registration Authority for a new card.")
        }
        return key
    }

    /// The answer to the card's encrypted witness: the witness decrypted, and a fresh challenge for the card.
    public static func answer(encryptedWitness: [UInt8], key: ManagementKey) throws -> (witness: [UInt8], challenge: [UInt8]) {
        guard encryptedWitness.count == key.algorithm.blockSize else {
            throw CardDeskError(.invalidInput, "The card's witness must be \(key.algorithm.blockSize) bytes for its \(key.algorithm) management key.")
        }
        return (try key.decrypt(encryptedWitness), key.randomBlock())
    }

    static func label(_ serial: String) -> String { "card \(serial) management key" }

    /// A new card's record with its own secrets, sealed: a fresh identity (CardDesk GUID, and the serial from it), an
    /// AES-256 management key and an 8-digit PUK. Card issuing and enrolment both start a card here.
    public static func newCard(
        userID: UserID, keyAlgorithm: String, status: CardRecord.Status, masterKey: MasterKey, now: Timestamp
    ) throws -> (record: CardRecord, guid: [UInt8], managementKey: ManagementKey, puk: String) {
        let guid = PIV.newCardDeskGUID()
        let serial = PIVCardSession.serial(guid: guid)
        let managementKey = ManagementKey.random(.aes256)
        let puk = newPUK()
        let record = CardRecord(
            serial: serial, userID: userID, status: status, keyAlgorithm: keyAlgorithm,
            managementKeySealed: try seal(managementKey, serial: serial, masterKey: masterKey),
            pukSealed: try sealPUK(puk, serial: serial, masterKey: masterKey), createdAt: now
        )
        return (record, guid, managementKey, puk)
    }

    /// A PUK the server chooses: 8 random digits.
    public static func newPUK() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<8).map { _ in String(Int.random(in: 0...9, using: &generator)) }.joined()
    }

    public static func sealPUK(_ puk: String, serial: String, masterKey: MasterKey) throws -> [UInt8] {
        try masterKey.seal(Array(puk.utf8), label: pukLabel(serial))
    }

    public static func openPUK(_ sealed: [UInt8], serial: String, masterKey: MasterKey) throws -> String {
        String(decoding: try masterKey.open(sealed, label: pukLabel(serial)), as: UTF8.self)
    }

    static func pukLabel(_ serial: String) -> String { "card \(serial) PUK" }
}
