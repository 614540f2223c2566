import CardDeskCore
import Crypto
import _CryptoExtras
public import Foundation
public import Smartcard
import SwiftASN1
import Synchronization
public import X509

/// A software smartcard with the semantics of a PIV card, kept in one file.
///
/// Keys are generated on the card and never leave it; signing needs the PIN verified in this session; three wrong
/// PINs lock it (the counter is written before the answer is given, so pulling the plug does not reset it); the PUK
/// has its own counter and blocks for good; every administrative operation needs the server's authorisation.
/// Every change is written atomically (a new file, then a rename): the card never holds half an operation.
///
/// Its file stands for the card's secure memory; a workstation process that reads the file directly could read
/// the keys, exactly as someone who can read a real card's silicon could. Tests, demos and training use it; real
/// cards come through PC/SC and PKCS#11 behind the same `SmartcardSession`.
public actor VirtualCard: SmartcardSession {
    public let file: URL
    private var pinVerified = false
    private var pendingChallenge: [UInt8]?
    private var removed = false
    private let removal: CardRemovalHook?
    /// Test hook: the agent process is killed at a card operation (`CARDDESK_TEST_KILL_AGENT`).
    private static let killer = ProcessKiller(environmentVariable: "CARDDESK_TEST_KILL_AGENT")

    /// Opens the card in `file` (a session starts with the PIN unverified).
    public init(file: URL, removal: CardRemovalHook? = CardRemovalHook.fromEnvironment()) {
        self.file = file
        self.removal = removal
    }

    /// Manufactures a new, empty card: serial, PIN, PUK and management key set, no keys yet.
    public static func create(file: URL, serial: String, pin: String, puk: String, managementKey: [UInt8]) throws -> VirtualCard {
        guard Passcode.isWellFormed(pin) else {
            throw CardDeskError(.invalidInput, "A passcode is 6 to 8 digits.")
        }
        guard !FileManager.default.fileExists(atPath: file.path) else {
            throw CardDeskError(.invalidInput, "There is already a card at \(file.path); choose another file.")
        }
        let image = CardImage(
            format: CardImage.format, serial: serial,
            pin: .make(pin, tries: 3), puk: .make(puk, tries: 3),
            managementKey: managementKey, slots: [:]
        )
        try write(image, to: file)
        return VirtualCard(file: file, removal: nil)
    }

    // MARK: Identification and PIN

    public func serial() async throws -> String {
        try await operation("serial") { image in (image.serial, nil) }
    }

    public func pinState() async throws -> PINState {
        try await operation("pinState") { image in
            (PINState(pinTriesLeft: image.pin.triesLeft, pinMaximumTries: image.pin.maximumTries, pukTriesLeft: image.puk.triesLeft, pinVerified: pinVerified), nil)
        }
    }

    public func verifyPIN(_ pin: String) async throws {
        try await operation("verifyPIN") { image in
            var image = image
            guard image.pin.triesLeft > 0 else { throw Self.lockedError(image) }
            if Passcode.isWellFormed(pin), image.pin.matches(pin) {
                image.pin.triesLeft = image.pin.maximumTries
                self.pinVerified = true
                return ((), image)
            }
            image.pin.triesLeft -= 1
            self.pinVerified = false
            // The decrement is saved before the answer: a card pulled out now still counts this try.
            try Self.write(image, to: self.file)
            if image.pin.triesLeft == 0 { throw Self.lockedError(image) }
            throw CardDeskError(.wrongPasscode, "The passcode you entered is not valid. You have \(image.pin.triesLeft) remaining tries")
        }
    }

    public func changePIN(current: String, new: String) async throws {
        guard Passcode.isWellFormed(new) else { throw CardDeskError(.invalidInput, "A new passcode is 6 to 8 digits.") }
        try await verifyPIN(current)
        try await operation("changePIN") { image in
            var image = image
            image.pin = .make(new, tries: image.pin.maximumTries)
            return ((), image)
        }
    }

    public func unblockPIN(puk: String, newPIN: String) async throws {
        guard Passcode.isWellFormed(newPIN) else { throw CardDeskError(.invalidInput, "A new passcode is 6 to 8 digits.") }
        try await operation("unblockPIN") { image in
            var image = image
            guard image.puk.triesLeft > 0 else { throw Self.lockedError(image) }
            guard image.puk.matches(puk) else {
                image.puk.triesLeft -= 1
                try Self.write(image, to: self.file)
                throw CardDeskError(.notAuthorised, "The card refused the unlock code (\(image.puk.triesLeft) tries left on the card).")
            }
            image.puk.triesLeft = image.puk.maximumTries
            image.pin = .make(newPIN, tries: image.pin.maximumTries)
            return ((), image)
        }
    }

    public func resetPIN(newPIN: String, authorisation: AdminAuthorisation) async throws {
        guard Passcode.isWellFormed(newPIN) else { throw CardDeskError(.invalidInput, "A new passcode is 6 to 8 digits.") }
        try await operation("resetPIN") { image in
            var image = image
            // A card whose PUK is used up is blocked for good: no reset, not even an authorised one.
            guard image.puk.triesLeft > 0 else { throw Self.lockedError(image) }
            try self.checkAuthorisation(authorisation, for: .resetPIN, image: image)
            image.pin = .make(newPIN, tries: image.pin.maximumTries)
            return ((), image)
        }
    }

    // MARK: Administration

    public func adminChallenge() async throws -> [UInt8] {
        try await operation("adminChallenge") { _ in
            let challenge = (0..<16).map { _ in UInt8.random(in: 0...255) }
            self.pendingChallenge = challenge
            return (challenge, nil)
        }
    }

    public func generateKeyPair(in slot: CardSlot, algorithm: CardKeyAlgorithm, authorisation: AdminAuthorisation) async throws -> Certificate.PublicKey {
        try await operation("generateKeyPair") { image in
            var image = image
            try self.checkAuthorisation(authorisation, for: .generateKey(slot: slot, algorithm: algorithm), image: image)
            let (privateKey, publicKey) = try CardKeys.generate(algorithm)
            image[slot] = CardImage.Slot(algorithm: algorithm, privateKey: privateKey, certificate: nil)
            return (publicKey, image)
        }
    }

    public func installCertificate(_ der: [UInt8], into slot: CardSlot, keyFrom: CardSlot?, authorisation: AdminAuthorisation) async throws {
        try await operation("installCertificate") { image in
            var image = image
            let hash = Array(SHA256.hash(data: der))
            try self.checkAuthorisation(authorisation, for: .installCertificate(slot: slot, keyFrom: keyFrom, certificateSHA256: hash), image: image)
            let certificate: Certificate
            do {
                certificate = try Certificate(derEncoded: der)
            } catch {
                throw CardDeskError(.invalidInput, "The card refused: that is not a certificate.")
            }
            let source = keyFrom ?? slot
            guard var incoming = image[source] else {
                throw CardDeskError(.invalidInput, "The card has no key in slot \(source) for this certificate.")
            }
            guard try CardKeys.publicKey(of: incoming) == certificate.publicKey else {
                throw CardDeskError(.invalidInput, "The card refused: the certificate is not for the key in slot \(source).")
            }
            incoming.certificate = der
            if let keyFrom, keyFrom != slot {
                // The key being replaced is retired, not destroyed (PIV keeps retired keys in 82–95).
                if let previous = image[slot] {
                    let retired = (4...20).compactMap(CardSlot.retired).first { image[$0] == nil } ?? CardSlot.retired(20)!
                    image[retired] = previous
                }
                image[keyFrom] = nil
            }
            image[slot] = incoming
            return ((), image)
        }
    }

    // MARK: Keys and certificates

    public func sign(_ data: [UInt8], with slot: CardSlot) async throws -> Certificate.Signature {
        try await operation("sign") { image in
            guard self.pinVerified else {
                throw CardDeskError(.passcodeRequired, "The card refused to sign: the passcode has not been entered in this session.")
            }
            guard let contents = image[slot] else { throw CardDeskError(.invalidInput, "The card has no key in slot \(slot).") }
            return (try CardKeys.sign(data, with: contents), nil)
        }
    }

    public func publicKey(in slot: CardSlot) async throws -> Certificate.PublicKey? {
        try await operation("publicKey") { image in (try image[slot].map(CardKeys.publicKey(of:)), nil) }
    }

    public func certificate(in slot: CardSlot) async throws -> Certificate? {
        try await operation("certificate") { image in
            (try image[slot]?.certificate.map { try Certificate(derEncoded: $0) }, nil)
        }
    }

    // MARK: The card's file

    /// Runs one card operation: the card must be present; the image is read fresh (another process may have
    /// changed the card), and a changed image is written atomically before the result is returned.
    private func operation<R: Sendable>(_ name: String, _ body: (CardImage) throws -> (R, CardImage?)) async throws -> R {
        if removed || removal?.shouldRemove(before: name) == true {
            removed = true
            throw Self.removedError
        }
        Self.killer.checkpoint(name, after: false)
        let image = try Self.read(file)
        let (result, changed) = try body(image)
        if let changed { try Self.write(changed, to: file) }
        Self.killer.checkpoint(name, after: true)
        if removal?.shouldRemove(after: name) == true {
            removed = true
            throw Self.removedError
        }
        return result
    }

    private func checkAuthorisation(_ authorisation: AdminAuthorisation, for operation: AdminOperation, image: CardImage) throws {
        // Any attempt uses the challenge up: a refused answer cannot be retried against it.
        let expected = pendingChallenge
        pendingChallenge = nil
        guard let expected, expected == authorisation.challenge, authorisation.isValid(for: operation, managementKey: image.managementKey) else {
            throw CardDeskError(.notAuthorised, "The card refused to \(operation.description): it was not authorised by the CardDesk server for this card.")
        }
    }

    static let removedError = CardDeskError(.cardRemoved, "The smartcard was removed. Insert it and try again.")

    static func lockedError(_ image: CardImage) -> CardDeskError {
        if image.puk.triesLeft == 0 {
            return CardDeskError(.cardBlocked, "Your smartcard is blocked for good. Take it to your Registration Authority for a replacement.")
        }
        return CardDeskError(.cardLocked, "Your smartcard is locked after three wrong passcodes. Unlock it with self-service unlock (carddesk unlock) or ask your Registration Authority, then try again.")
    }

    static func read(_ file: URL) throws -> CardImage {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw removedError
        }
        do {
            let image = try JSONDecoder().decode(CardImage.self, from: data)
            guard image.format == CardImage.format else { throw CardDeskError(.corruptCard, "unknown format \(image.format)") }
            return image
        } catch {
            throw CardDeskError(.corruptCard, "The card in \(file.path) cannot be read: its file is damaged. Ask your Registration Authority for a new card.")
        }
    }

    static func write(_ image: CardImage, to file: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(image)
        // Mode 0600 from the first byte, then rename(2): a reader sees the old image or the new one, never a mix.
        do {
            try SecretFile.write(Array(data), to: file.path)
        } catch {
            throw CardDeskError(.corruptCard, "Cannot write to the card in \(file.path): check that its folder is writable.")
        }
    }
}

/// Test hook: "remove the card" just before or just after a named operation, as a user pulling the card out would.
/// Set `CARDDESK_TEST_REMOVE_CARD=<operation>:<before|after>[:<occurrence>]`, for example `installCertificate:before`.
public struct CardRemovalHook: Sendable {
    public let operation: String
    public let after: Bool
    public let occurrence: Int
    private let counter = Counter()

    public init(operation: String, after: Bool, occurrence: Int = 1) {
        self.operation = operation
        self.after = after
        self.occurrence = occurrence
    }

    public static func fromEnvironment() -> CardRemovalHook? {
        guard let value = ProcessInfo.processInfo.environment["CARDDESK_TEST_REMOVE_CARD"] else { return nil }
        let parts = value.split(separator: ":").map(String.init)
        guard parts.count >= 2 else { return nil }
        return CardRemovalHook(operation: parts[0], after: parts[1] == "after", occurrence: parts.count > 2 ? Int(parts[2]) ?? 1 : 1)
    }

    func shouldRemove(before name: String) -> Bool {
        !after && name == operation && counter.next() == occurrence
    }

    func shouldRemove(after name: String) -> Bool {
        after && name == operation && counter.next() == occurrence
    }

    private final class Counter: Sendable {
        private let value = Synchronization.Mutex(0)
        func next() -> Int { value.withLock { $0 += 1; return $0 } }
    }
}
