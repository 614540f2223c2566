import CardDeskCore
import Crypto
import Foundation
import Smartcard
import Testing
import VirtualSmartcard
import SwiftASN1
import X509

@Suite("Virtual smartcard")
struct VirtualCardTests {
    static let managementKey = Array(repeating: UInt8(0x42), count: 32)

    static func newCard(pin: String = "123456") throws -> (URL, VirtualCard) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-card-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("card.json")
        let card = try VirtualCard.create(file: file, serial: "CD-TEST-0001", pin: pin, puk: "87654321", managementKey: managementKey)
        return (file, card)
    }

    /// What the server does: answer the card's challenge for one operation.
    static func authorise(_ card: VirtualCard, _ operation: AdminOperation, key: [UInt8] = managementKey) async throws -> AdminAuthorisation {
        AdminAuthorisation.answer(challenge: try await card.adminChallenge(), operation: operation, managementKey: key)
    }

    @Test("Three wrong passcodes lock the card, also after the process restarts")
    func lockout() async throws {
        let (file, card) = try Self.newCard()
        let first = await #expect(throws: CardDeskError.self) { try await card.verifyPIN("000000") }
        #expect(first?.reason == "The passcode you entered is not valid. You have 2 remaining tries")
        // A new session (a restarted process) sees the same counter.
        let reopened = VirtualCard(file: file, removal: nil)
        #expect(try await reopened.pinState().pinTriesLeft == 2)
        let second = await #expect(throws: CardDeskError.self) { try await reopened.verifyPIN("111111") }
        #expect(second?.code == .wrongPasscode)
        let third = await #expect(throws: CardDeskError.self) { try await VirtualCard(file: file, removal: nil).verifyPIN("222222") }
        #expect(third?.code == .cardLocked)
        #expect(third?.reason.contains("unlock") == true)

        // Locked: even the right passcode is refused, in any session.
        let locked = VirtualCard(file: file, removal: nil)
        let right = await #expect(throws: CardDeskError.self) { try await locked.verifyPIN("123456") }
        #expect(right?.code == .cardLocked)
        #expect(try await locked.pinState().isLocked)

        // The PUK resets it.
        try await locked.unblockPIN(puk: "87654321", newPIN: "246810")
        try await locked.verifyPIN("246810")
        #expect(try await locked.pinState().pinTriesLeft == 3)
    }

    @Test("A right passcode resets the counter; the PUK blocks for good after three wrong tries")
    func counters() async throws {
        let (_, card) = try Self.newCard()
        await #expect(throws: CardDeskError.self) { try await card.verifyPIN("000000") }
        try await card.verifyPIN("123456")
        #expect(try await card.pinState().pinTriesLeft == 3)
        for _ in 0..<3 { await #expect(throws: CardDeskError.self) { try await card.verifyPIN("999999") } }
        for _ in 0..<3 { await #expect(throws: CardDeskError.self) { try await card.unblockPIN(puk: "00000000", newPIN: "135790") } }
        let blocked = await #expect(throws: CardDeskError.self) { try await card.unblockPIN(puk: "87654321", newPIN: "135790") }
        #expect(blocked?.code == .cardBlocked)
        #expect(try await card.pinState().isBlockedForGood)
    }

    @Test("Key generation and certificate writes need the server's authorisation for that exact operation", arguments: CardKeyAlgorithm.allCases)
    func administration(algorithm: CardKeyAlgorithm) async throws {
        let (_, card) = try Self.newCard()
        // No authorisation, a wrong key, a reused challenge, an authorisation for another slot: all refused.
        let stale = AdminAuthorisation(challenge: Array(repeating: 1, count: 16), response: Array(repeating: 2, count: 32))
        let refusedNoChallenge = await #expect(throws: CardDeskError.self) {
            try await card.generateKeyPair(in: .authentication, algorithm: algorithm, authorisation: stale)
        }
        #expect(refusedNoChallenge?.code == .notAuthorised)
        let wrongKey = try await Self.authorise(card, .generateKey(slot: .authentication, algorithm: algorithm), key: Array(repeating: 7, count: 32))
        await #expect(throws: CardDeskError.self) { try await card.generateKeyPair(in: .authentication, algorithm: algorithm, authorisation: wrongKey) }
        let otherSlot = try await Self.authorise(card, .generateKey(slot: .signing, algorithm: algorithm))
        await #expect(throws: CardDeskError.self) { try await card.generateKeyPair(in: .authentication, algorithm: algorithm, authorisation: otherSlot) }

        let good = try await Self.authorise(card, .generateKey(slot: .authentication, algorithm: algorithm))
        let publicKey = try await card.generateKeyPair(in: .authentication, algorithm: algorithm, authorisation: good)
        await #expect(throws: CardDeskError.self, "a challenge is single use") {
            try await card.generateKeyPair(in: .authentication, algorithm: algorithm, authorisation: good)
        }
        #expect(try await card.publicKey(in: .authentication) == publicKey)

        // Writing a certificate: refused without authorisation, and an authorisation for another certificate
        // (one the CA did not issue for this write) does not work either.
        let der = try await Self.selfSigned(for: publicKey, card: card)
        let forOther = try await Self.authorise(card, .installCertificate(slot: .authentication, keyFrom: nil, certificateSHA256: Array(repeating: 0, count: 32)))
        let refused = await #expect(throws: CardDeskError.self) {
            try await card.installCertificate(der, into: .authentication, keyFrom: nil, authorisation: forOther)
        }
        #expect(refused?.code == .notAuthorised)
        #expect(try await card.certificate(in: .authentication) == nil)
        let write = try await Self.authorise(card, .installCertificate(slot: .authentication, keyFrom: nil, certificateSHA256: Array(SHA256.hash(data: der))))
        try await card.installCertificate(der, into: .authentication, keyFrom: nil, authorisation: write)
        #expect(try await card.certificate(in: .authentication)?.publicKey == publicKey)
    }

    @Test("Signing needs the passcode in this session; signatures verify with the slot's public key")
    func signing() async throws {
        let (file, card) = try Self.newCard()
        let publicKey = try await card.generateKeyPair(in: .signing, algorithm: .p256, authorisation: try await Self.authorise(card, .generateKey(slot: .signing, algorithm: .p256)))
        let refused = await #expect(throws: CardDeskError.self) { try await card.sign([1, 2, 3], with: .signing) }
        #expect(refused?.code == .passcodeRequired)
        try await card.verifyPIN("123456")
        let signature = try await card.sign([1, 2, 3], with: .signing)
        #expect(publicKey.isValidSignature(signature.rawRepresentation, for: [1, 2, 3] as [UInt8], signatureAlgorithm: .ecdsaWithSHA256))
        // A new session starts without the passcode.
        let next = VirtualCard(file: file, removal: nil)
        await #expect(throws: CardDeskError.self) { try await next.sign([1, 2, 3], with: .signing) }
    }

    @Test("Installing from a staging slot swaps keys in one step and retires the old key")
    func stagedInstall() async throws {
        let (_, card) = try Self.newCard()
        try await card.verifyPIN("123456")
        let oldKey = try await card.generateKeyPair(in: .authentication, algorithm: .p256, authorisation: try await Self.authorise(card, .generateKey(slot: .authentication, algorithm: .p256)))
        let staging = CardSlot.staging(for: .authentication)
        let newKey = try await card.generateKeyPair(in: staging, algorithm: .p256, authorisation: try await Self.authorise(card, .generateKey(slot: staging, algorithm: .p256)))
        // Until the install, the old key still signs in 9A.
        let before = try await card.sign([9], with: .authentication)
        #expect(oldKey.isValidSignature(before.rawRepresentation, for: [9] as [UInt8], signatureAlgorithm: .ecdsaWithSHA256))

        let der = try await Self.selfSigned(for: newKey, card: card, slot: staging)
        let write = try await Self.authorise(card, .installCertificate(slot: .authentication, keyFrom: staging, certificateSHA256: Array(SHA256.hash(data: der))))
        try await card.installCertificate(der, into: .authentication, keyFrom: staging, authorisation: write)
        #expect(try await card.publicKey(in: .authentication) == newKey)
        #expect(try await card.publicKey(in: staging) == nil)
        #expect(try await card.publicKey(in: CardSlot.retired(4)!) == oldKey)
        let after = try await card.sign([9], with: .authentication)
        #expect(newKey.isValidSignature(after.rawRepresentation, for: [9] as [UInt8], signatureAlgorithm: .ecdsaWithSHA256))
    }

    @Test("A removed card fails every call; a damaged card file is reported clearly")
    func removedAndCorrupt() async throws {
        let (file, _) = try Self.newCard()
        let removing = VirtualCard(file: file, removal: CardRemovalHook(operation: "verifyPIN", after: false))
        let removed = await #expect(throws: CardDeskError.self) { try await removing.verifyPIN("123456") }
        #expect(removed?.code == .cardRemoved)
        await #expect(throws: CardDeskError.self) { try await removing.serial() }
        #expect(try await VirtualCard(file: file, removal: nil).serial() == "CD-TEST-0001")

        try Data("{\"format\": \"carddesk-virtual-card/1\", \"serial\": 12".utf8).write(to: file)
        let corrupt = await #expect(throws: CardDeskError.self) { try await VirtualCard(file: file, removal: nil).serial() }
        #expect(corrupt?.code == .corruptCard)
        try FileManager.default.removeItem(at: file)
        let gone = await #expect(throws: CardDeskError.self) { try await VirtualCard(file: file, removal: nil).serial() }
        #expect(gone?.code == .cardRemoved)
    }

    @Test("No public API hands out private key material")
    func noKeyExport() async throws {
        let (_, card) = try Self.newCard()
        let publicKey = try await card.generateKeyPair(in: .signing, algorithm: .p256, authorisation: try await Self.authorise(card, .generateKey(slot: .signing, algorithm: .p256)))
        let key = CardPrivateKey(session: card, slot: .signing, publicKey: publicKey)
        #expect(throws: (any Error).self) { _ = try key.serializeAsPEM() }
        #expect(throws: (any Error).self) { _ = try Certificate.PrivateKey(key).serializeAsPEM() }
    }

    /// A certificate for `publicKey`, signed by the card's own key in `slot` (the card issues nothing itself;
    /// this only gives the write something real to check against).
    static func selfSigned(for publicKey: Certificate.PublicKey, card: VirtualCard, slot: CardSlot = .authentication) async throws -> [UInt8] {
        try await card.verifyPIN("123456")
        let signer = CardPrivateKey(session: card, slot: slot, publicKey: publicKey)
        let name = try DistinguishedName { CommonName("test") }
        let certificate = try await Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: Date(), notValidAfter: Date().addingTimeInterval(3600),
            issuer: name, subject: name, signatureAlgorithm: signer.defaultSignatureAlgorithm,
            extensions: .init(), issuerAsyncPrivateKey: .init(signer)
        )
        var coder = DER.Serializer()
        try coder.serialize(certificate)
        return coder.serializedBytes
    }
}
