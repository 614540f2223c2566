import CardDeskCore
import Crypto
import _CryptoExtras
import SwiftASN1
public import X509

/// The host side of a PIV card (NIST SP 800-73-4), over any APDU transport: PC/SC for real cards and the virtual
/// card through vpcd, or the virtual card in this process. Each method is one card operation; status words become
/// `CardDeskError`s written for the card holder. YubiKey extensions are used where the card answers them, and a
/// generic PIV card (answering 6D00 to them) works without.
public struct PIVClient: Sendable {
    public let channel: APDUChannel

    public init(transport: any APDUTransport) {
        self.channel = APDUChannel(transport: transport)
    }

    // MARK: Application and identity

    /// Selects the PIV application; fails with a clear message for a card that has none.
    public func select() async throws {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.select, p1: 0x04, p2: 0x00, data: PIV.aid, le: 256))
        guard answer.status.isSuccess else {
            throw CardDeskError(.corruptCard, "This card has no PIV application (it answered \(answer.status) to SELECT), so CardDesk cannot use it.")
        }
    }

    /// Reads a data object (the contents inside its `53` wrapper); nil when the card does not have it.
    public func readObject(_ tag: UInt32) async throws -> [UInt8]? {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.getData, p1: 0x3F, p2: 0xFF, data: TLV.encode(0x5C, TLV.encodeTag(tag)), le: 256))
        if answer.status == .notFound { return nil }
        try expectSuccess(answer.status, "read the card's data")
        guard let outer = TLV.parse(answer.data), let first = outer.first else {
            throw CardDeskError(.corruptCard, "The card's data object \(String(tag, radix: 16, uppercase: true)) is malformed.")
        }
        return first.tag == 0x53 ? first.value : answer.data
    }

    /// Writes a data object (needs management-key authentication in this card session). Empty contents delete it.
    public func writeObject(_ tag: UInt32, _ contents: [UInt8]) async throws {
        let data = TLV.encode(0x5C, TLV.encodeTag(tag)) + TLV.encode(0x53, contents)
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.putData, p1: 0x3F, p2: 0xFF, data: data))
        if answer.status == .securityStatusNotSatisfied {
            throw CardDeskError(.notAuthorised, "The card refused the write: the card administration was not authorised.")
        }
        try expectSuccess(answer.status, "write to the card")
    }

    /// The card's GUID from its CHUID, as 32 hexadecimal digits; nil when the card has no CHUID.
    public func guid() async throws -> [UInt8]? {
        try await readObject(PIV.Object.chuid).flatMap(PIV.guid(fromCHUID:))
    }

    /// The certificate in a key slot's object; nil for none.
    public func certificate(forKey reference: UInt8) async throws -> Certificate? {
        guard let tag = PIV.Object.certificate(forKey: reference), let object = try await readObject(tag), !object.isEmpty else { return nil }
        guard let der = PIV.certificate(fromObject: object), let certificate = try? Certificate(derEncoded: der) else {
            throw CardDeskError(.corruptCard, "The certificate in slot \(Hex.string([reference])) of the card cannot be read.")
        }
        return certificate
    }

    public func writeCertificate(_ der: [UInt8], forKey reference: UInt8) async throws {
        guard let tag = PIV.Object.certificate(forKey: reference) else {
            throw CardDeskError(.invalidInput, "Slot \(Hex.string([reference])) holds no certificate.")
        }
        try await writeObject(tag, PIV.certificateObject(der))
    }

    // MARK: PIN and PUK

    /// The PIN's tries left, or nil when the PIN is verified in this card session (the card says 9000 then).
    public func pinTriesLeft() async throws -> Int? {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.verify, p1: 0x00, p2: PIV.KeyReference.pin))
        if answer.status.isSuccess { return nil }
        if answer.status == .authenticationBlocked { return 0 }
        guard let tries = answer.status.triesLeft else {
            throw CardDeskError(.corruptCard, "The card gave an unexpected answer (\(answer.status)) when asked about its passcode.")
        }
        return tries
    }

    /// Verifies the PIN. Throws `.wrongPasscode` with the tries left, `.cardLocked` when it is blocked.
    public func verifyPIN(_ pin: String) async throws {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.verify, p1: 0x00, p2: PIV.KeyReference.pin, data: PIV.paddedPIN(pin)))
        try expectPIN(answer.status, what: .pin)
    }

    public func changePIN(current: String, new: String) async throws {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.changeReferenceData, p1: 0x00, p2: PIV.KeyReference.pin,
                                                        data: PIV.paddedPIN(current) + PIV.paddedPIN(new)))
        try expectPIN(answer.status, what: .pin)
    }

    public func changePUK(current: String, new: String) async throws {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.changeReferenceData, p1: 0x00, p2: PIV.KeyReference.puk,
                                                        data: PIV.paddedPIN(current) + PIV.paddedPIN(new)))
        try expectPIN(answer.status, what: .puk)
    }

    /// RESET RETRY COUNTER: a new PIN, with the PUK.
    public func unblockPIN(puk: String, newPIN: String) async throws {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.resetRetryCounter, p1: 0x00, p2: PIV.KeyReference.pin,
                                                        data: PIV.paddedPIN(puk) + PIV.paddedPIN(newPIN)))
        try expectPIN(answer.status, what: .puk)
    }

    enum Secret { case pin, puk }

    private func expectPIN(_ status: StatusWord, what: Secret) throws {
        if status.isSuccess { return }
        if status == .authenticationBlocked || status.triesLeft == 0 {
            throw what == .pin
                ? CardDeskError(.cardLocked, "Your smartcard is locked after three wrong passcodes. Unlock it with self-service unlock (carddesk unlock) or ask your Registration Authority, then try again.")
                : CardDeskError(.cardBlocked, "Your smartcard is blocked for good. Take it to your Registration Authority for a replacement.")
        }
        if let tries = status.triesLeft {
            throw what == .pin
                ? CardDeskError(.wrongPasscode, "The passcode you entered is not valid. You have \(tries) remaining tries")
                : CardDeskError(.notAuthorised, "The card refused the unlock code (\(tries) tries left on the card).")
        }
        if status == .wrongData {
            throw CardDeskError(.invalidInput, "The card refused the new \(what == .pin ? "passcode" : "unlock code"): a passcode is 6 to 8 digits.")
        }
        try expectSuccess(status, what == .pin ? "check the passcode" : "use the unlock code")
    }

    // MARK: Management key (9B)

    /// Mutual authentication with the management key, where the key is held elsewhere (the CardDesk server):
    /// the card's encrypted witness goes to `answer`, which returns the decrypted witness and its own challenge;
    /// the card then proves itself by encrypting the challenge, which is returned for the key holder to check.
    public func authenticateManagementKey(
        algorithm: ManagementKey.Algorithm, answer: (_ encryptedWitness: [UInt8]) async throws -> (witness: [UInt8], challenge: [UInt8])
    ) async throws -> [UInt8] {
        let (plain, challenge) = try await answer(try await managementKeyWitness(algorithm: algorithm))
        return try await completeManagementKeyAuthentication(algorithm: algorithm, witness: plain, challenge: challenge)
    }

    /// Mutual authentication's first half: the card's witness, encrypted under its management key. The card waits
    /// for the second half; any other GENERAL AUTHENTICATE of the management key starts over.
    public func managementKeyWitness(algorithm: ManagementKey.Algorithm) async throws -> [UInt8] {
        let first = try await channel.send(CommandAPDU(ins: PIV.Instruction.generalAuthenticate, p1: algorithm.rawValue, p2: PIV.KeyReference.managementKey,
                                                       data: TLV.encode(0x7C, TLV.encode(0x80, [])), le: 256))
        if first.status == .incorrectP1P2 {
            throw CardDeskError(.notAuthorised, "The card's management key is not a \(algorithm) key.")
        }
        try expectSuccess(first.status, "start the card administration")
        guard let witness = TLV.parse(first.data)?.value(0x7C).flatMap(TLV.parse)?.value(0x80), witness.count == algorithm.blockSize else {
            throw CardDeskError(.corruptCard, "The card's management-key challenge is malformed.")
        }
        return witness
    }

    /// Mutual authentication's second half: the witness decrypted and the host's challenge; the card's encryption of
    /// that challenge comes back.
    public func completeManagementKeyAuthentication(algorithm: ManagementKey.Algorithm, witness plain: [UInt8], challenge: [UInt8]) async throws -> [UInt8] {
        let second = try await channel.send(CommandAPDU(ins: PIV.Instruction.generalAuthenticate, p1: algorithm.rawValue, p2: PIV.KeyReference.managementKey,
                                                        data: TLV.encode(0x7C, TLV.encode(0x80, plain) + TLV.encode(0x81, challenge)), le: 256))
        if second.status == .securityStatusNotSatisfied {
            throw CardDeskError(.notAuthorised, "The card refused the administration: the management key does not match this card.")
        }
        try expectSuccess(second.status, "finish the card administration")
        guard let response = TLV.parse(second.data)?.value(0x7C).flatMap(TLV.parse)?.value(0x82), response.count == algorithm.blockSize else {
            throw CardDeskError(.corruptCard, "The card's management-key answer is malformed.")
        }
        return response
    }

    /// Mutual authentication with a key held here (enrolment of a factory-default card, tests). Checks the card's
    /// answer too: a card that does not know the key is refused.
    public func authenticate(with key: ManagementKey) async throws {
        var challenge: [UInt8] = []
        let response = try await authenticateManagementKey(algorithm: key.algorithm) { encrypted in
            challenge = key.randomBlock()
            return (try key.decrypt(encrypted), challenge)
        }
        guard ConstantTime.equal(response, try key.encrypt(challenge)) else {
            throw CardDeskError(.notAuthorised, "The card did not prove it holds the management key.")
        }
    }

    /// YubiKey SET MANAGEMENT KEY (needs management-key authentication). `.instructionNotSupported` on a card that
    /// cannot change it.
    public func setManagementKey(_ key: ManagementKey) async throws {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.yubicoSetManagementKey, p1: 0xFF, p2: 0xFF,
                                                        data: [key.algorithm.rawValue, PIV.KeyReference.managementKey, UInt8(key.bytes.count)] + key.bytes))
        if answer.status == .instructionNotSupported {
            throw CardDeskError(.unsupportedCard, "This card cannot change its management key.")
        }
        try expectSuccess(answer.status, "change the card's management key")
    }

    // MARK: Keys

    /// Generates a key pair in a slot (needs management-key authentication); returns its public key.
    public func generateKey(in reference: UInt8, algorithm: UInt8) async throws -> Certificate.PublicKey {
        let template = TLV.encode(0xAC, TLV.encode(0x80, [algorithm]))
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.generateKeyPair, p1: 0x00, p2: reference, data: template, le: 256))
        if answer.status == .securityStatusNotSatisfied {
            throw CardDeskError(.notAuthorised, "The card refused to generate a key: the card administration was not authorised.")
        }
        try expectSuccess(answer.status, "generate a key on the card")
        guard let inner = TLV.parse(answer.data)?.value(0x7F49), let fields = TLV.parse(inner) else {
            throw CardDeskError(.corruptCard, "The card's new public key is malformed.")
        }
        return try Self.publicKey(fields, algorithm: algorithm)
    }

    /// Builds a public key from the fields of a `7F49` template (86 point; or 81 modulus, 82 exponent).
    static func publicKey(_ fields: [TLV], algorithm: UInt8) throws -> Certificate.PublicKey {
        do {
            switch algorithm {
            case PIV.KeyAlgorithm.eccP256:
                return Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: fields.value(0x86) ?? []))
            case PIV.KeyAlgorithm.eccP384:
                return Certificate.PublicKey(try P384.Signing.PublicKey(x963Representation: fields.value(0x86) ?? []))
            default:
                guard let modulus = fields.value(0x81), let exponent = fields.value(0x82) else { throw CardDeskError(.corruptCard, "no modulus") }
                return Certificate.PublicKey(try _RSA.Signing.PublicKey(n: modulus, e: exponent))
            }
        } catch {
            throw CardDeskError(.corruptCard, "The card's public key cannot be read (\(error)).")
        }
    }

    /// The raw private-key operation of a slot: ECDSA over `input` (a hash; DER signature back) or RSA on `input`
    /// (a block padded to the key's size; the raw result back). Needs the PIN for every slot except 9E.
    public func authenticate(slot reference: UInt8, algorithm: UInt8, input: [UInt8]) async throws -> [UInt8] {
        let data = TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x81, input))
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.generalAuthenticate, p1: algorithm, p2: reference, data: data, le: 256))
        if answer.status == .securityStatusNotSatisfied {
            throw CardDeskError(.passcodeRequired, "The card refused to sign: the passcode has not been entered in this session.")
        }
        if answer.status == .notFound {
            throw CardDeskError(.invalidInput, "The card has no key in slot \(Hex.string([reference])).")
        }
        try expectSuccess(answer.status, "sign with the card")
        guard let result = TLV.parse(answer.data)?.value(0x7C).flatMap(TLV.parse)?.value(0x82) else {
            throw CardDeskError(.corruptCard, "The card's signature is malformed.")
        }
        return result
    }

    // MARK: YubiKey extensions (nil on a card without them)

    public func version() async throws -> [UInt8]? {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.yubicoGetVersion, p1: 0, p2: 0, le: 256))
        return answer.status.isSuccess && answer.data.count == 3 ? answer.data : nil
    }

    public func serialNumber() async throws -> UInt32? {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.yubicoGetSerial, p1: 0, p2: 0, le: 256))
        guard answer.status.isSuccess, answer.data.count == 4 else { return nil }
        return answer.data.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// YubiKey metadata of a slot, PIN (80), PUK (81) or management key (9B), as its TLVs.
    public func metadata(_ reference: UInt8) async throws -> [TLV]? {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.yubicoGetMetadata, p1: 0, p2: reference, le: 256))
        guard answer.status.isSuccess else { return nil }
        return TLV.parse(answer.data)
    }

    /// The attestation certificate of a key generated on the card (YubiKey ATTEST); nil when the card cannot attest.
    public func attestation(of reference: UInt8) async throws -> [UInt8]? {
        let answer = try await channel.send(CommandAPDU(ins: PIV.Instruction.yubicoAttest, p1: reference, p2: 0, le: 256))
        return answer.status.isSuccess && !answer.data.isEmpty ? answer.data : nil
    }

    // MARK: Status words

    private func expectSuccess(_ status: StatusWord, _ what: String) throws {
        guard status.isSuccess else {
            throw CardDeskError(.corruptCard, "The card could not \(what) (it answered \(status)).")
        }
    }
}
