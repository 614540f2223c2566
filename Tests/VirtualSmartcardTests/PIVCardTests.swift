import CardDeskCore
import Crypto
import _CryptoExtras
import Foundation
import Smartcard
import Testing
import VirtualSmartcard
import SwiftASN1
import X509

/// The virtual card as a PIV card, driven in this process through the same PIV client that drives real cards.
@Suite("Virtual PIV card")
struct PIVCardTests {
    static func blankCard() throws -> (URL, VirtualPIVCard, PIVClient) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-piv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("card.json")
        let card = try VirtualPIVCard.blank(file: file)
        return (file, card, PIVClient(transport: card))
    }

    @Test("A blank card: PIV application selected by the RID alone, a CHUID with a GUID, factory PIN, no certificates")
    func blank() async throws {
        let (_, card, piv) = try Self.blankCard()
        try await piv.select()
        // yubico-piv-tool selects with the 5-byte RID only.
        let rid = try await card.transmit([0x00, 0xA4, 0x04, 0x00, 0x05] + PIV.rid)
        #expect(Array(rid.suffix(2)) == [0x90, 0x00])
        // Another application's AID is not found.
        #expect(try await card.transmit([0x00, 0xA4, 0x04, 0x00, 0x06, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x20]) == [0x6A, 0x82])
        let guid = try #require(try await piv.guid())
        #expect(guid.count == 16)
        #expect(try await piv.pinTriesLeft() == 3)
        try await piv.verifyPIN("123456")
        #expect(try await piv.pinTriesLeft() == nil) // verified in this session
        #expect(try await piv.certificate(forKey: PIV.KeyReference.authentication) == nil)
        #expect(try await piv.version() == [5, 4, 3])
        let metadata = try #require(try await piv.metadata(PIV.KeyReference.managementKey))
        #expect(metadata.value(0x01) == [ManagementKey.Algorithm.tripleDES.rawValue])
        #expect(metadata.value(0x05) == [1]) // still the default key
    }

    @Test("Wrong PINs count down on the card, survive a reset and a new process, and block at zero; the PUK unblocks")
    func pinCounting() async throws {
        let (file, card, piv) = try Self.blankCard()
        try await piv.select()
        await #expect(throws: CardDeskError.self) { try await piv.verifyPIN("999999") }
        card.reset()
        // A new card object over the same file (another process) sees the used try.
        let again = PIVClient(transport: VirtualPIVCard(file: file))
        #expect(try await again.pinTriesLeft() == 2)
        await #expect(throws: CardDeskError.self) { try await again.verifyPIN("999998") }
        let locked = await #expect(throws: CardDeskError.self) { try await again.verifyPIN("999997") }
        #expect(locked?.code == .cardLocked)
        // Blocked: even the right PIN is refused.
        let still = await #expect(throws: CardDeskError.self) { try await again.verifyPIN("123456") }
        #expect(still?.code == .cardLocked)
        // A wrong PUK costs a PUK try; the right one sets a new PIN and restores the counter.
        let wrongPUK = await #expect(throws: CardDeskError.self) { try await again.unblockPIN(puk: "00000000", newPIN: "24681357") }
        #expect(wrongPUK?.code == .notAuthorised)
        #expect(try await again.metadata(PIV.KeyReference.puk)?.value(0x06) == [3, 2])
        try await again.unblockPIN(puk: "12345678", newPIN: "24681357")
        #expect(try await again.pinTriesLeft() == 3)
        try await again.verifyPIN("24681357")
        // The PUK can be changed, and then the old one is wrong.
        try await again.changePUK(current: "12345678", new: "31415926")
        await #expect(throws: CardDeskError.self) { try await again.changePUK(current: "12345678", new: "11112222") }
        try await again.changePIN(current: "24681357", new: "86427531")
        try await again.verifyPIN("86427531")
    }

    @Test("A card copied into memory keeps its state there (a used PIN try, a changed PIN) and never writes its file")
    func inMemoryCopy() async throws {
        let (file, _, _) = try Self.blankCard()
        let before = try Data(contentsOf: file)
        let card = try VirtualPIVCard.inMemory(copying: file)
        let piv = PIVClient(transport: card)
        try await piv.select()
        await #expect(throws: CardDeskError.self) { try await piv.verifyPIN("999999") }
        card.reset()
        #expect(try await piv.pinTriesLeft() == 2)
        try await piv.changePIN(current: "123456", new: "24681357")
        card.reset()
        try await piv.verifyPIN("24681357")
        // Even with its file gone, the copy answers; the file is as it was.
        #expect(try Data(contentsOf: file) == before)
        try FileManager.default.removeItem(at: file)
        card.reset()
        #expect(try await piv.pinTriesLeft() == 3)
        // The file card from the same bytes never saw any of it.
        try before.write(to: file)
        #expect(try await PIVClient(transport: VirtualPIVCard(file: file)).pinTriesLeft() == 3)
        await #expect(throws: CardDeskError.self) { try await PIVClient(transport: VirtualPIVCard(file: file)).verifyPIN("24681357") }
    }

    @Test("Keys and objects are written only after management-key authentication; a wrong key is refused")
    func managementKey() async throws {
        let (_, card, piv) = try Self.blankCard()
        try await piv.select()
        let refused = await #expect(throws: CardDeskError.self) {
            _ = try await piv.generateKey(in: PIV.KeyReference.authentication, algorithm: PIV.KeyAlgorithm.eccP256)
        }
        #expect(refused?.code == .notAuthorised)
        await #expect(throws: CardDeskError.self) { try await piv.writeObject(PIV.Object.chuid, [0x01]) }
        let wrong = try ManagementKey(algorithm: .tripleDES, bytes: Array(repeating: 7, count: 24))
        let wrongKey = await #expect(throws: CardDeskError.self) { try await piv.authenticate(with: wrong) }
        #expect(wrongKey?.code == .notAuthorised)
        try await piv.authenticate(with: .factoryDefault)
        // A new AES-256 key; after a reset the factory key no longer works, the new one does.
        let mine = ManagementKey.random(.aes256)
        try await piv.setManagementKey(mine)
        card.reset()
        await #expect(throws: CardDeskError.self) { try await piv.authenticate(with: .factoryDefault) }
        try await piv.authenticate(with: mine)
        #expect(try await piv.metadata(PIV.KeyReference.managementKey)?.value(0x05) == [0])
        // The witness is single use: replaying the step-2 answer of a finished exchange fails.
        card.reset()
        let replay = try await card.transmit([0x00, 0x87, mine.algorithm.rawValue, 0x9B, 0x26, 0x7C, 0x24, 0x80, 0x10] + Array(repeating: 0, count: 16) + [0x81, 0x10] + Array(repeating: 0, count: 16))
        #expect(replay == [0x69, 0x82])
    }

    @Test("P-256 and RSA-2048 keys generated on the card sign what the host hashed or padded; a certificate object round-trips",
          arguments: [PIV.KeyAlgorithm.eccP256, PIV.KeyAlgorithm.rsa2048])
    func signing(algorithm: UInt8) async throws {
        let (_, card, piv) = try Self.blankCard()
        try await piv.select()
        try await piv.authenticate(with: .factoryDefault)
        let publicKey = try await piv.generateKey(in: PIV.KeyReference.signature, algorithm: algorithm)
        let message = Array("carddesk".utf8)
        let digest = Array(SHA256.hash(data: message))
        // No PIN yet: refused.
        let noPIN = await #expect(throws: CardDeskError.self) {
            _ = try await piv.authenticate(slot: PIV.KeyReference.signature, algorithm: algorithm, input: digest)
        }
        #expect(noPIN?.code == .passcodeRequired)
        try await piv.verifyPIN("123456")
        if algorithm == PIV.KeyAlgorithm.eccP256 {
            let der = try await piv.authenticate(slot: PIV.KeyReference.signature, algorithm: algorithm, input: digest)
            let key = try #require(P256.Signing.PublicKey(publicKey))
            #expect(key.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: der), for: SHA256.hash(data: message)))
        } else {
            let key = try #require(_RSA.Signing.PublicKey(publicKey))
            let block = PIV.pkcs1SHA256Block(digest: digest, modulusBytes: key.keySizeInBits / 8)
            // 256 bytes out: the command goes as a chain, the answer comes back through 61xx and GET RESPONSE.
            let raw = try await piv.authenticate(slot: PIV.KeyReference.signature, algorithm: algorithm, input: block)
            #expect(key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: raw), for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5))
        }
        // The wrong algorithm for the slot is refused.
        let other = algorithm == PIV.KeyAlgorithm.eccP256 ? PIV.KeyAlgorithm.rsa2048 : PIV.KeyAlgorithm.eccP256
        await #expect(throws: CardDeskError.self) { _ = try await piv.authenticate(slot: PIV.KeyReference.signature, algorithm: other, input: digest) }

        // A certificate for the key, written (chained: longer than one APDU) and read back.
        let issuerKey = P256.Signing.PrivateKey()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey, notValidBefore: Date(), notValidAfter: Date().addingTimeInterval(86_400),
            issuer: try DistinguishedName { CommonName("Test CA") }, subject: try DistinguishedName { CommonName("Test holder") },
            signatureAlgorithm: .ecdsaWithSHA256, extensions: .init(), issuerPrivateKey: .init(issuerKey)
        )
        var coder = DER.Serializer()
        try coder.serialize(certificate)
        try await piv.writeCertificate(coder.serializedBytes, forKey: PIV.KeyReference.signature)
        #expect(try await piv.certificate(forKey: PIV.KeyReference.signature) == certificate)
        // GET DATA with Le=8 (as OpenSC sends first): 8 bytes and 61xx.
        let partial = try await card.transmit([0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x0A, 0x08])
        #expect(partial.count == 10 && partial[8] == 0x61)
    }

    @Test("Malformed and unknown commands get status words, never a crash")
    func malformed() async throws {
        let (_, card, _) = try Self.blankCard()
        #expect(try await card.transmit([0x00]) == [0x67, 0x00])
        #expect(try await card.transmit([0x00, 0x99, 0x00, 0x00]) == [0x6D, 0x00])
        #expect(try await card.transmit([0x80, 0xCB, 0x3F, 0xFF, 0x00]) == [0x6E, 0x00])
        #expect(try await card.transmit([0x00, 0xCB, 0x3F, 0xFF, 0x02, 0x5C, 0x05]) == [0x6A, 0x80])
        #expect(try await card.transmit([0x00, 0x87, 0x11, 0x9A, 0x04, 0x7C, 0x7F, 0x00, 0x00]) == [0x6A, 0x80])
        // GET RESPONSE with nothing waiting.
        #expect(try await card.transmit([0x00, 0xC0, 0x00, 0x00, 0x00]) == [0x69, 0x85])
        // A chain that grows past what the card holds is refused, and the card still answers afterwards.
        var answer: [UInt8] = [0x90, 0x00]
        var links = 0
        while answer == [0x90, 0x00], links < 100 {
            answer = try await card.transmit([0x10, 0xDB, 0x3F, 0xFF, 0xFF] + Array(repeating: 0x41, count: 255))
            links += 1
        }
        #expect(answer == [0x6A, 0x84])
        #expect(links == 8 * 1024 / 255 + 1)
        // A chain abandoned for another command is dropped.
        _ = try await card.transmit([0x10, 0xDB, 0x3F, 0xFF, 0x01, 0x41])
        #expect(Array(try await card.transmit([0x00, 0xA4, 0x04, 0x00, 0x05] + PIV.rid).suffix(2)) == [0x90, 0x00])
    }
}

@Suite("PIV building blocks")
struct PIVBuildingBlockTests {
    @Test("Triple DES matches the FIPS 46 example and OpenSSL; AES blocks match OpenSSL")
    func ciphers() throws {
        // FIPS 46-3 worked example with K1 = K2 = K3 (Triple DES is then single DES).
        let single = Hex.bytes("133457799BBCDFF1")!
        let key = try ManagementKey(algorithm: .tripleDES, bytes: single + single + single)
        #expect(try key.encrypt(Hex.bytes("0123456789ABCDEF")!) == Hex.bytes("85E813540F0AB405")!)
        #expect(try key.decrypt(Hex.bytes("85E813540F0AB405")!) == Hex.bytes("0123456789ABCDEF")!)
        for algorithm in ManagementKey.Algorithm.allCases {
            for _ in 0..<3 {
                let key = ManagementKey.random(algorithm)
                let block = key.randomBlock()
                let cipher = switch algorithm {
                case .tripleDES: "des-ede3"
                case .aes128: "aes-128-ecb"
                case .aes192: "aes-192-ecb"
                case .aes256: "aes-256-ecb"
                }
                let expected = try OpenSSL.encrypt(block, cipher: cipher, key: key.bytes)
                #expect(try key.encrypt(block) == expected, "\(algorithm)")
                #expect(try key.decrypt(expected) == block, "\(algorithm)")
            }
        }
    }

    @Test("BER-TLV: tags of one to three bytes, long lengths, and malformed input gives nil")
    func tlv() {
        let long = Array(repeating: UInt8(7), count: 300)
        let encoded = TLV.encode(0x5FC105, long) + TLV.encode(0x7C, [1, 2]) + TLV.encode(0x7F49, Array(repeating: 1, count: 130))
        let parsed = TLV.parse(encoded)
        #expect(parsed?.map(\.tag) == [0x5FC105, 0x7C, 0x7F49])
        #expect(parsed?.value(0x5FC105) == long)
        #expect(TLV.parse([0x53, 0x05, 0x01]) == nil)
        #expect(TLV.parse([0x5F]) == nil)
        #expect(TLV.parse([0x53, 0x83, 0x01, 0x00, 0x00]) == nil)
        #expect(TLV.parse([0x5F, 0xC1, 0x85, 0x85, 0x00]) == nil)
    }

    @Test("Command APDUs: the four cases parse back")
    func apdus() async throws {
        let cases = [
            CommandAPDU(ins: 0xCB, p1: 0x3F, p2: 0xFF),
            CommandAPDU(ins: 0xCB, p1: 0x3F, p2: 0xFF, le: 256),
            CommandAPDU(ins: 0x20, p1: 0x00, p2: 0x80, data: [1, 2, 3]),
            CommandAPDU(ins: 0x87, p1: 0x11, p2: 0x9A, data: [1, 2, 3], le: 8),
        ]
        for command in cases { #expect(CommandAPDU(bytes: command.bytes) == command) }
    }
}

enum OpenSSL {
    static func encrypt(_ block: [UInt8], cipher: String, key: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["enc", "-\(cipher)", "-K", Hex.string(key), "-nopad", "-e"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(block))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CardDeskError(.internalFailure, "openssl enc -\(cipher) failed") }
        return Array(data)
    }
}
