import CardDeskCore
public import Foundation
public import Smartcard
import Synchronization
import X509

/// A virtual smartcard that is a PIV card (NIST SP 800-73-4) and nothing else: it answers command APDUs over the
/// state in its file, the way a card's chip answers them over its secure memory. The same card is reached in this
/// process (as an `APDUTransport`: fast tests, and the demo without pcscd) or through vsmartcard's vpcd
/// (`carddesk card connect`), where pcscd offers it to every program on the machine.
///
/// What it keeps as a PIV card does: keys are generated on the card and never leave it; signing needs the PIN
/// (except the card-authentication key 9E); three wrong PINs block the PIN, three wrong PUKs block the PUK, and a
/// try is counted on the card before the answer goes back; keys and objects are written only after management-key
/// authentication (9B); every change is written atomically (a new file, then a rename). It also answers the YubiKey
/// extensions CardDesk and yubico-piv-tool use (version, serial, metadata, set management key, attestation).
///
/// Its file stands for the card's chip: whoever can read the file can read the keys. Virtual cards are for demos,
/// tests and training, never for real staff.
public final class VirtualPIVCard: APDUTransport, Sendable {
    /// The card's file (for a card held in memory: the file it was copied from, which it never writes).
    public let file: URL
    private let inMemory: Bool
    private let application: Mutex<PIVApplication>

    public init(file: URL) {
        self.file = file
        self.inMemory = false
        self.application = Mutex(PIVApplication(memory: .file(file)))
    }

    /// A copy of the card in `file` whose state from then on lives in this process's memory only: it is never
    /// written back and is gone when the process ends. For load generators (carddesk-bench), which stand for many
    /// workstations each with its own chip: a file card's every change is two disk flushes on the bench's machine.
    public static func inMemory(copying file: URL) throws -> VirtualPIVCard {
        VirtualPIVCard(file: file, image: try PIVCardImage.read(file))
    }

    private init(file: URL, image: PIVCardImage) {
        self.file = file
        self.inMemory = true
        self.application = Mutex(PIVApplication(memory: .process(PIVCardMemory.Cell(image))))
    }

    /// Makes a factory-fresh card in `file` (which must not exist): default management key, PIN 123456,
    /// PUK 12345678, no keys, a CHUID with a new GUID; with a manufacturer, an attestation key it certified (F9).
    @discardableResult
    public static func blank(file: URL, manufacturer: VirtualCardManufacturer? = nil) throws -> VirtualPIVCard {
        guard !FileManager.default.fileExists(atPath: file.path) else {
            throw CardDeskError(.invalidInput, "There is already a card at \(file.path); choose another file.")
        }
        var image = PIVCardImage.blank()
        if let manufacturer {
            let (key, certificate) = try manufacturer.attestationKey(serialNumber: image.serialNumber)
            image[key: PIV.KeyReference.attestation] = key
            image[object: PIV.Object.yubicoAttestationCertificate] = PIV.certificateObject(certificate)
        }
        try image.write(to: file)
        return VirtualPIVCard(file: file)
    }

    /// Checks that `file` holds a virtual PIV card.
    public static func check(_ file: URL) throws {
        _ = try PIVCardImage.read(file)
    }

    /// The ATR: T=1, historical bytes "CardDesk" (not "YubiKey", so OpenSC treats it as a generic PIV card).
    public static let atr: [UInt8] = [0x3B, 0x88, 0x01, 0x43, 0x61, 0x72, 0x64, 0x44, 0x65, 0x73, 0x6B, 0x84]

    /// Forgets the PIN and management-key authentication, as a power cycle does.
    public func reset() {
        application.withLock { $0.reset() }
    }

    /// In this process, a card whose file is gone was taken out (moved out of its reader folder).
    public func transmit(_ bytes: [UInt8]) async throws -> [UInt8] {
        guard inMemory || FileManager.default.fileExists(atPath: file.path) else {
            throw CardDeskError(.cardRemoved, "The smartcard was removed. Insert it and try again.")
        }
        return respond(to: bytes)
    }

    /// One command APDU in, one response APDU out (callable from any thread). Never throws: every failure is a
    /// status word, as on a card.
    public func respond(to bytes: [UInt8]) -> [UInt8] {
        application.withLock { $0.respond(to: bytes) }
    }
}

/// Where a virtual card keeps what a chip keeps in its persistent memory.
enum PIVCardMemory {
    /// A file, written atomically on every change.
    case file(URL)
    /// This process's memory (used only under the card's lock).
    case process(Cell)

    final class Cell {
        var image: PIVCardImage
        init(_ image: PIVCardImage) { self.image = image }
    }
}

/// The PIV application's logic and its session state (what a chip keeps in RAM); the persistent state is the file.
struct PIVApplication {
    let memory: PIVCardMemory

    init(memory: PIVCardMemory) {
        self.memory = memory
    }
    /// What the card says its firmware version is (YubiKey GET VERSION): 5.4.3 has metadata, attestation and AES keys.
    static let version: [UInt8] = [5, 4, 3]
    static let label = "CardDesk virtual PIV"
    /// The largest command chain the card accepts (a certificate object and its tags).
    static let maximumChain = 8 * 1024

    // Session state: forgotten when the card is reset or removed, as on a chip.
    private var pinVerified = false
    private var managementAuthenticated = false
    private var pendingWitness: [UInt8]?
    private var pendingChallenge: [UInt8]?
    private var chain: (header: [UInt8], data: [UInt8])?
    private var pendingResponse: [UInt8] = []

    mutating func reset() {
        pinVerified = false
        managementAuthenticated = false
        pendingWitness = nil
        pendingChallenge = nil
        chain = nil
        pendingResponse = []
    }

    mutating func respond(to bytes: [UInt8]) -> [UInt8] {
        guard let command = CommandAPDU(bytes: bytes) else { return StatusWord.wrongLength.bytes }
        if command.ins == PIV.Instruction.getResponse {
            guard !pendingResponse.isEmpty else { return StatusWord.conditionsNotSatisfied.bytes }
            let chunk = pendingResponse
            pendingResponse = []
            return send(chunk, status: .success, le: command.le)
        }
        pendingResponse = []
        guard command.cla & 0xEF == 0x00 else { return StatusWord.classNotSupported.bytes }
        let header = [command.ins, command.p1, command.p2]
        if command.cla & 0x10 != 0 {
            var gathered = chain?.header == header ? chain!.data : []
            gathered += command.data
            guard gathered.count <= Self.maximumChain else {
                chain = nil
                return StatusWord.notEnoughMemory.bytes
            }
            chain = (header, gathered)
            return StatusWord.success.bytes
        }
        var data = command.data
        if let pending = chain {
            chain = nil
            // The end of the chain; another command instead abandons it (the host that started it went away).
            if pending.header == header { data = pending.data + data }
        }
        let (answer, status) = handle(command, data: data)
        return send(answer, status: status, le: command.le)
    }

    /// Sends `data`, or as much as the host asked for with `61xx` saying how much is left for GET RESPONSE.
    private mutating func send(_ data: [UInt8], status: StatusWord, le: Int?) -> [UInt8] {
        let limit = min(le ?? 256, 256)
        guard data.count > limit else { return data + [status.sw1, status.sw2] }
        pendingResponse = Array(data.dropFirst(limit))
        return Array(data.prefix(limit)) + StatusWord.moreData(pendingResponse.count).bytes
    }

    // MARK: Commands

    private mutating func handle(_ command: CommandAPDU, data: [UInt8]) -> ([UInt8], StatusWord) {
        do {
            switch command.ins {
            case PIV.Instruction.select: return try select(command, data: data)
            case PIV.Instruction.getData: return try getData(command, data: data)
            case PIV.Instruction.putData: return try putData(command, data: data)
            case PIV.Instruction.verify: return try verify(command, data: data)
            case PIV.Instruction.changeReferenceData: return try changeReference(command, data: data)
            case PIV.Instruction.resetRetryCounter: return try resetRetryCounter(command, data: data)
            case PIV.Instruction.generateKeyPair: return try generate(command, data: data)
            case PIV.Instruction.generalAuthenticate: return try authenticate(command, data: data)
            case PIV.Instruction.yubicoGetVersion: return (Self.version, .success)
            case PIV.Instruction.yubicoGetSerial:
                let serial = try load().serialNumber
                return ((0..<4).map { UInt8(truncatingIfNeeded: serial >> (24 - 8 * $0)) }, .success)
            case PIV.Instruction.yubicoGetMetadata: return try metadata(command)
            case PIV.Instruction.yubicoSetManagementKey: return try setManagementKey(command, data: data)
            case PIV.Instruction.yubicoAttest: return try attest(command)
            case PIV.Instruction.yubicoReset: return try factoryReset()
            default: return ([], .instructionNotSupported)
            }
        } catch let refusal as PIVCardKeys.Refusal {
            return ([], refusal.status)
        } catch let error as CardDeskError where error.code == .cardRemoved {
            // The file went away under the card: answer as a card that lost power would not; say memory failed.
            return ([], .memoryFailure)
        } catch {
            return ([], .memoryFailure)
        }
    }

    private func load() throws -> PIVCardImage {
        switch memory {
        case .file(let file): try PIVCardImage.read(file)
        case .process(let cell): cell.image
        }
    }

    private func save(_ image: PIVCardImage) throws {
        switch memory {
        case .file(let file): try image.write(to: file)
        case .process(let cell): cell.image = image
        }
    }

    private mutating func select(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        // By AID, and by any prefix of the PIV AID down to the RID (yubico-piv-tool sends the RID only).
        guard command.p1 == 0x04, data.count >= PIV.rid.count, data.count <= PIV.aid.count, Array(PIV.aid.prefix(data.count)) == data else {
            return ([], .notFound)
        }
        return (PIV.applicationPropertyTemplate(label: Self.label), .success)
    }

    private mutating func getData(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        guard command.p1 == 0x3F, command.p2 == 0xFF else { return ([], .incorrectP1P2) }
        guard let fields = TLV.parse(data), let tagBytes = fields.value(0x5C), (1...3).contains(tagBytes.count) else {
            return ([], .wrongData)
        }
        let tag = tagBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        if tag == PIV.Object.discovery {
            // Discovery: the PIV AID and the PIN usage policy (application PIN only), not wrapped in 53.
            return (TLV.encode(0x7E, TLV.encode(0x4F, Array(PIV.aid.prefix(10)) + [0x00]) + TLV.encode(0x5F2F, [0x40, 0x00])), .success)
        }
        guard let contents = try load()[object: tag] else { return ([], .notFound) }
        return (TLV.encode(0x53, contents), .success)
    }

    private mutating func putData(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        guard command.p1 == 0x3F, command.p2 == 0xFF else { return ([], .incorrectP1P2) }
        guard managementAuthenticated else { return ([], .securityStatusNotSatisfied) }
        guard let fields = TLV.parse(data), fields.count == 2, fields[0].tag == 0x5C, fields[1].tag == 0x53,
              (1...3).contains(fields[0].value.count) else {
            return ([], .wrongData)
        }
        let tag = fields[0].value.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard PIV.Object.isWritable(tag) else { return ([], .wrongData) }
        var image = try load()
        let contents = fields[1].value
        image[object: tag] = contents.isEmpty ? nil : contents
        guard image.objectBytes <= PIVCardImage.objectCapacity else { return ([], .notEnoughMemory) }
        try save(image)
        return ([], .success)
    }

    private mutating func verify(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        guard command.p2 == PIV.KeyReference.pin else { return ([], .incorrectP1P2) }
        if command.p1 == 0xFF {
            pinVerified = false
            return ([], .success)
        }
        guard command.p1 == 0x00 else { return ([], .incorrectP1P2) }
        var image = try load()
        if data.isEmpty {
            if image.pin.triesLeft == 0 { return ([], .authenticationBlocked) }
            return ([], pinVerified ? .success : .triesLeft(image.pin.triesLeft))
        }
        guard data.count == 8 else { return ([], .wrongData) }
        guard image.pin.triesLeft > 0 else { return ([], .authenticationBlocked) }
        if image.pin.matches(PIV.unpaddedPIN(data)) {
            if image.pin.triesLeft != image.pin.maximumTries {
                image.pin.triesLeft = image.pin.maximumTries
                try save(image)
            }
            pinVerified = true
            return ([], .success)
        }
        pinVerified = false
        image.pin.triesLeft -= 1
        // Counted before the answer: a card pulled out now still has this try used.
        try save(image)
        return ([], image.pin.triesLeft == 0 ? .authenticationBlocked : .triesLeft(image.pin.triesLeft))
    }

    private mutating func changeReference(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        guard command.p1 == 0x00, command.p2 == PIV.KeyReference.pin || command.p2 == PIV.KeyReference.puk else {
            return ([], .incorrectP1P2)
        }
        guard data.count == 16 else { return ([], .wrongData) }
        let isPIN = command.p2 == PIV.KeyReference.pin
        var image = try load()
        var secret = isPIN ? image.pin : image.puk
        guard secret.triesLeft > 0 else { return ([], .authenticationBlocked) }
        let old = PIV.unpaddedPIN(Array(data.prefix(8)))
        let new = PIV.unpaddedPIN(Array(data.suffix(8)))
        guard secret.matches(old) else {
            secret.triesLeft -= 1
            if isPIN { image.pin = secret; pinVerified = false } else { image.puk = secret }
            try save(image)
            return ([], secret.triesLeft == 0 ? .authenticationBlocked : .triesLeft(secret.triesLeft))
        }
        guard (isPIN ? 6...8 : 6...8).contains(new.count) else { return ([], .wrongData) }
        secret = .make(new, tries: secret.maximumTries)
        if isPIN { image.pin = secret } else { image.puk = secret }
        try save(image)
        if isPIN { pinVerified = true }
        return ([], .success)
    }

    private mutating func resetRetryCounter(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        guard command.p1 == 0x00, command.p2 == PIV.KeyReference.pin else { return ([], .incorrectP1P2) }
        guard data.count == 16 else { return ([], .wrongData) }
        var image = try load()
        guard image.puk.triesLeft > 0 else { return ([], .authenticationBlocked) }
        guard image.puk.matches(PIV.unpaddedPIN(Array(data.prefix(8)))) else {
            image.puk.triesLeft -= 1
            try save(image)
            return ([], image.puk.triesLeft == 0 ? .authenticationBlocked : .triesLeft(image.puk.triesLeft))
        }
        let new = PIV.unpaddedPIN(Array(data.suffix(8)))
        guard (6...8).contains(new.count) else { return ([], .wrongData) }
        image.puk.triesLeft = image.puk.maximumTries
        image.pin = .make(new, tries: image.pin.maximumTries)
        try save(image)
        pinVerified = false
        return ([], .success)
    }

    /// The key slots GENERATE and GENERAL AUTHENTICATE accept (9A, 9C, 9D, 9E and the retired 82–95).
    private static func isKeySlot(_ reference: UInt8) -> Bool {
        [PIV.KeyReference.authentication, PIV.KeyReference.signature, PIV.KeyReference.keyManagement, PIV.KeyReference.cardAuthentication].contains(reference)
            || (0x82...0x95).contains(reference)
    }

    private mutating func generate(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        guard command.p1 == 0x00, Self.isKeySlot(command.p2) else { return ([], .incorrectP1P2) }
        guard managementAuthenticated else { return ([], .securityStatusNotSatisfied) }
        guard let template = TLV.parse(data)?.value(0xAC), let fields = TLV.parse(template),
              let algorithm = fields.value(0x80), algorithm.count == 1 else {
            return ([], .wrongData)
        }
        let key = try PIVCardKeys.generate(algorithm[0])
        var image = try load()
        image[key: command.p2] = key
        try save(image)
        return (try PIVCardKeys.publicKeyTemplate(key), .success)
    }

    private mutating func authenticate(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        guard let outer = TLV.parse(data), outer.count == 1, outer[0].tag == 0x7C, let fields = TLV.parse(outer[0].value) else {
            return ([], .wrongData)
        }
        if command.p2 == PIV.KeyReference.managementKey {
            return try authenticateManagementKey(algorithm: command.p1, fields: fields)
        }
        guard Self.isKeySlot(command.p2) else { return ([], .incorrectP1P2) }
        let image = try load()
        guard let key = image[key: command.p2] else { return ([], .notFound) }
        guard key.algorithm == command.p1 else { return ([], .incorrectP1P2) }
        guard command.p2 == PIV.KeyReference.cardAuthentication || pinVerified else { return ([], .securityStatusNotSatisfied) }
        guard fields.value(0x82) == [] else { return ([], .wrongData) }
        if let challenge = fields.value(0x81) {
            return (TLV.encode(0x7C, TLV.encode(0x82, try PIVCardKeys.sign(challenge, with: key))), .success)
        }
        if let point = fields.value(0x85) {
            return (TLV.encode(0x7C, TLV.encode(0x82, try PIVCardKeys.agree(point, with: key))), .success)
        }
        return ([], .wrongData)
    }

    /// 9B: mutual authentication (witness 80, then witness and challenge 80 + 81, answered with 82) and external
    /// authentication (challenge 81 requested, then answered with 82). Any failed or out-of-order step starts over.
    private mutating func authenticateManagementKey(algorithm: UInt8, fields: [TLV]) throws -> ([UInt8], StatusWord) {
        let key = try load().managementKey
        guard algorithm == key.algorithm.rawValue else { return ([], .incorrectP1P2) }
        let witness = pendingWitness
        let challenge = pendingChallenge
        pendingWitness = nil
        pendingChallenge = nil
        managementAuthenticated = false
        switch (fields.value(0x80), fields.value(0x81), fields.value(0x82)) {
        case ([], nil, nil):
            let fresh = key.randomBlock()
            pendingWitness = fresh
            return (TLV.encode(0x7C, TLV.encode(0x80, try key.encrypt(fresh))), .success)
        case (let answer?, let hostChallenge?, nil) where !answer.isEmpty:
            guard let witness, ConstantTime.equal(answer, witness), hostChallenge.count == key.algorithm.blockSize else {
                return ([], .securityStatusNotSatisfied)
            }
            managementAuthenticated = true
            return (TLV.encode(0x7C, TLV.encode(0x82, try key.encrypt(hostChallenge))), .success)
        case (nil, [], nil):
            let fresh = key.randomBlock()
            pendingChallenge = fresh
            return (TLV.encode(0x7C, TLV.encode(0x81, fresh)), .success)
        case (nil, nil, let response?):
            guard let challenge, ConstantTime.equal(response, try key.encrypt(challenge)) else {
                return ([], .securityStatusNotSatisfied)
            }
            managementAuthenticated = true
            return ([], .success)
        default:
            return ([], .wrongData)
        }
    }

    // MARK: YubiKey extensions

    private mutating func metadata(_ command: CommandAPDU) throws -> ([UInt8], StatusWord) {
        let image = try load()
        switch command.p2 {
        case PIV.KeyReference.pin, PIV.KeyReference.puk:
            let secret = command.p2 == PIV.KeyReference.pin ? image.pin : image.puk
            return (TLV.encode(0x01, [0xFF]) + TLV.encode(0x05, [secret.isDefault ? 1 : 0])
                    + TLV.encode(0x06, [UInt8(secret.maximumTries), UInt8(secret.triesLeft)]), .success)
        case PIV.KeyReference.managementKey:
            return (TLV.encode(0x01, [image.managementKey.algorithm.rawValue]) + TLV.encode(0x02, [0x00, 0x01])
                    + TLV.encode(0x05, [image.managementKeyIsDefault ? 1 : 0]), .success)
        default:
            guard let key = image[key: command.p2] else { return ([], .notFound) }
            // Public key (tag 04) in the inner form of GENERATE's answer.
            let template = try PIVCardKeys.publicKeyTemplate(key)
            let inner = TLV.parse(template)?.first?.value ?? []
            return (TLV.encode(0x01, [key.algorithm]) + TLV.encode(0x02, [0x01, 0x01]) + TLV.encode(0x03, [key.origin.rawValue])
                    + TLV.encode(0x04, inner), .success)
        }
    }

    private mutating func setManagementKey(_ command: CommandAPDU, data: [UInt8]) throws -> ([UInt8], StatusWord) {
        guard command.p1 == 0xFF, command.p2 == 0xFF || command.p2 == 0xFE else { return ([], .incorrectP1P2) }
        guard managementAuthenticated else { return ([], .securityStatusNotSatisfied) }
        guard data.count >= 3, data[1] == PIV.KeyReference.managementKey, let algorithm = ManagementKey.Algorithm(rawValue: data[0]),
              Int(data[2]) == data.count - 3, let key = try? ManagementKey(algorithm: algorithm, bytes: Array(data.dropFirst(3))) else {
            return ([], .wrongData)
        }
        var image = try load()
        image.managementKey = key
        image.managementKeyIsDefault = false
        try save(image)
        return ([], .success)
    }

    /// YubiKey attestation: a certificate for the key in the slot, signed by the card's attestation key (F9), which
    /// says the key was generated on this card. Imported keys and a card without an attestation key get 6A80.
    private mutating func attest(_ command: CommandAPDU) throws -> ([UInt8], StatusWord) {
        guard Self.isKeySlot(command.p1) else { return ([], .incorrectP1P2) }
        let image = try load()
        guard let key = image[key: command.p1], key.origin == .generated,
              let attestationKey = image[key: PIV.KeyReference.attestation],
              let issuerObject = image[object: PIV.Object.yubicoAttestationCertificate],
              let issuer = PIV.certificate(fromObject: issuerObject) else {
            return ([], .wrongData)
        }
        return (try PIVAttestation.certificate(for: key, slot: command.p1, serialNumber: image.serialNumber,
                                               signer: attestationKey, issuer: issuer, version: Self.version), .success)
    }

    /// YubiKey reset: only once both PIN and PUK are blocked; the card becomes factory-fresh (its attestation key
    /// and certificate stay, as on a YubiKey).
    private mutating func factoryReset() throws -> ([UInt8], StatusWord) {
        let image = try load()
        guard image.pin.triesLeft == 0, image.puk.triesLeft == 0 else { return ([], .conditionsNotSatisfied) }
        var fresh = PIVCardImage.blank()
        fresh[key: PIV.KeyReference.attestation] = image[key: PIV.KeyReference.attestation]
        fresh[object: PIV.Object.yubicoAttestationCertificate] = image[object: PIV.Object.yubicoAttestationCertificate]
        try save(fresh)
        reset()
        return ([], .success)
    }
}
