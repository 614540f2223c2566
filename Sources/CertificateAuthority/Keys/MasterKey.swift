public import CardDeskCore
public import Crypto
public import Foundation

/// The key that encrypts CA private keys at rest (AES-256-GCM).
///
/// It comes from configuration or the environment (`CARDDESK_MASTER_KEY`, base64 of 32 bytes). For the embedded
/// default a key file is generated once in the data directory, readable only by its owner. There is no key in code.
public struct MasterKey: Sendable {
    private let key: SymmetricKey

    public init(base64: String) throws(CardDeskError) {
        guard let bytes = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            throw CardDeskError(.configuration, "The master key must be 32 bytes in base64 (for example from `openssl rand -base64 32`).")
        }
        self.key = SymmetricKey(data: bytes)
    }

    /// A fresh random key, base64-encoded, for a new key file.
    public static func generateBase64() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// Reads the key file, creating it (mode 0600) the first time.
    public static func loadOrCreate(file: URL) throws(CardDeskError) -> MasterKey {
        let manager = FileManager.default
        if !manager.fileExists(atPath: file.path) {
            do {
                try SecretFile.createNew(Array((generateBase64() + "\n").utf8), at: file.path)
            } catch {
                throw CardDeskError(.configuration, "Cannot create the master key file \(file.path): check that the folder is writable.")
            }
        }
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw CardDeskError(.corruptDataDirectory, "Cannot read the master key file \(file.path).")
        }
        if let attributes = try? manager.attributesOfItem(atPath: file.path),
           let mode = attributes[.posixPermissions] as? NSNumber, mode.intValue & 0o077 != 0 {
            throw CardDeskError(.configuration, "The master key file \(file.path) is readable by other users: run `chmod 600 \(file.path)`.")
        }
        return try MasterKey(base64: text)
    }

    /// A key for one purpose (`label`), derived with HKDF-SHA256; the master key itself never leaves this type and is
    /// used for nothing but deriving: `sealing` (CA keys, card secrets), `audit-chain` (the log's HMAC), and so on.
    public func derivedKey(label: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Array("carddesk:\(label)".utf8), outputByteCount: 32)
    }

    /// Encrypts `plaintext` under the derived sealing key; `label` is authenticated too, so a sealed key cannot be
    /// swapped for another's file. Used for CA keys and for each card's management key and PUK.
    public func seal(_ plaintext: [UInt8], label: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: derivedKey(label: "sealing"), authenticating: Array(label.utf8))
        guard let combined = box.combined else { throw CardDeskError(.internalFailure, "AES-GCM gave no combined box.") }
        return Array(combined)
    }

    /// Opens what `seal` made. Data sealed before the sealing key was derived (CardDesk 0.5 and earlier) was sealed
    /// under the master key itself; it still opens, read-only: nothing is sealed that way any more.
    public func open(_ sealed: [UInt8], label: String) throws(CardDeskError) -> [UInt8] {
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.SealedBox(combined: sealed)
        } catch {
            throw CardDeskError(.wrongMasterKey, "The sealed \(label) key is damaged (not an AES-GCM box).")
        }
        for candidate in [derivedKey(label: "sealing"), key] {
            if let plaintext = try? AES.GCM.open(box, using: candidate, authenticating: Array(label.utf8)) { return Array(plaintext) }
        }
        throw CardDeskError(
            .wrongMasterKey,
            "Cannot decrypt the \(label) key: the master key does not match the one it was sealed with, or the key file is damaged. Check CARDDESK_MASTER_KEY or master.key in the data directory."
        )
    }
}
