import CardDeskCore
import Crypto
import _CryptoExtras
import SwiftASN1
import Synchronization
public import X509

/// The card seam over a PIV card: every `SmartcardSession` operation as PIV commands through `PIVClient`.
///
/// The PIV application is selected before the first command (and again after a reset). Which algorithm a slot's
/// key has (GENERAL AUTHENTICATE must name it) comes from the key generated in this session, the card's metadata
/// (YubiKey), or the certificate in the slot.
public final class PIVCardSession: SmartcardSession {
    public let client: PIVClient
    private let state = Mutex<(selected: Bool, pinVerified: Bool, algorithms: [UInt8: UInt8])>((false, false, [:]))

    public init(transport: any APDUTransport) {
        self.client = PIVClient(transport: transport)
    }

    private func selected() async throws -> PIVClient {
        if !state.withLock({ $0.selected }) {
            try await client.select()
            state.withLock { $0.selected = true }
        }
        return client
    }

    public func serial() async throws -> String {
        guard let guid = try await selected().guid() else {
            throw CardDeskError(.unknownCard, "This smartcard has no card identifier (CHUID): it has not been enrolled with CardDesk. Ask your Registration Authority.")
        }
        return Self.serial(guid: guid)
    }

    /// CardDesk's serial for a GUID: "CD" and its last 8 bytes in hexadecimal.
    public static func serial(guid: [UInt8]) -> String { "CD" + Hex.string(guid.suffix(8)) }

    /// The GUID CardDesk gave the card with this serial (nil for a serial CardDesk did not make).
    public static func guid(serial: String) -> [UInt8]? {
        guard serial.hasPrefix("CD"), let bytes = Hex.bytes(String(serial.dropFirst(2))), bytes.count == 8 else { return nil }
        return PIV.cardDeskGUID(serialBytes: bytes)
    }

    public func pinState() async throws -> PINState {
        let piv = try await selected()
        let tries = try await piv.pinTriesLeft()
        let pinMetadata = try await piv.metadata(PIV.KeyReference.pin)?.value(0x06)
        let pukMetadata = try await piv.metadata(PIV.KeyReference.puk)?.value(0x06)
        let maximum = pinMetadata.flatMap { $0.count == 2 ? Int($0[0]) : nil } ?? 3
        let verified = tries == nil
        return PINState(
            pinTriesLeft: tries ?? pinMetadata.flatMap { $0.count == 2 ? Int($0[1]) : nil } ?? maximum,
            pinMaximumTries: maximum,
            pukTriesLeft: pukMetadata.flatMap { $0.count == 2 ? Int($0[1]) : nil },
            pinVerified: verified
        )
    }

    public func verifyPIN(_ pin: String) async throws {
        do {
            try await selected().verifyPIN(pin)
            state.withLock { $0.pinVerified = true }
        } catch {
            state.withLock { $0.pinVerified = false }
            throw error
        }
    }

    public func changePIN(current: String, new: String) async throws {
        guard Passcode.isWellFormed(new) else { throw CardDeskError(.invalidInput, "A new passcode is 6 to 8 digits.") }
        try await selected().changePIN(current: current, new: new)
    }

    public func unblockPIN(puk: String, newPIN: String) async throws {
        guard Passcode.isWellFormed(newPIN) else { throw CardDeskError(.invalidInput, "A new passcode is 6 to 8 digits.") }
        try await selected().unblockPIN(puk: puk, newPIN: newPIN)
    }

    public func changePUK(current: String, new: String) async throws {
        try await selected().changePUK(current: current, new: new)
    }

    public func managementKeyAlgorithm() async throws -> ManagementKey.Algorithm? {
        try await selected().metadata(PIV.KeyReference.managementKey)?.value(0x01)?.first.flatMap(ManagementKey.Algorithm.init(rawValue:))
    }

    public func administrationWitness(algorithm: ManagementKey.Algorithm) async throws -> [UInt8] {
        try await selected().managementKeyWitness(algorithm: algorithm)
    }

    public func completeAdministration(algorithm: ManagementKey.Algorithm, witness: [UInt8], challenge: [UInt8]) async throws -> [UInt8] {
        try await selected().completeManagementKeyAuthentication(algorithm: algorithm, witness: witness, challenge: challenge)
    }

    public func generateKeyPair(in slot: CardSlot, algorithm: CardKeyAlgorithm) async throws -> Certificate.PublicKey {
        let key = try await selected().generateKey(in: slot.keyReference, algorithm: algorithm.pivAlgorithmID)
        state.withLock { $0.algorithms[slot.keyReference] = algorithm.pivAlgorithmID }
        return key
    }

    public func writeCertificate(_ der: [UInt8], into slot: CardSlot) async throws {
        try await selected().writeCertificate(der, forKey: slot.keyReference)
    }

    public func attestation(of slot: CardSlot) async throws -> (certificate: [UInt8], issuer: [UInt8])? {
        let piv = try await selected()
        guard let certificate = try await piv.attestation(of: slot.keyReference),
              let object = try await piv.readObject(PIV.Object.yubicoAttestationCertificate),
              let issuer = PIV.certificate(fromObject: object) else { return nil }
        return (certificate, issuer)
    }

    public func sign(_ data: [UInt8], with slot: CardSlot) async throws -> Certificate.Signature {
        let piv = try await selected()
        let algorithm = try await keyAlgorithm(of: slot, piv)
        let digest = Array(SHA256.hash(data: data))
        switch algorithm {
        case PIV.KeyAlgorithm.eccP256:
            let der = try await piv.authenticate(slot: slot.keyReference, algorithm: algorithm, input: digest)
            return try Certificate.Signature(signatureAlgorithm: .ecdsaWithSHA256, signatureBytes: ASN1BitString(bytes: ArraySlice(der)))
        case PIV.KeyAlgorithm.rsa2048:
            let raw = try await piv.authenticate(slot: slot.keyReference, algorithm: algorithm, input: PIV.pkcs1SHA256Block(digest: digest, modulusBytes: 256))
            return try Certificate.Signature(signatureAlgorithm: .sha256WithRSAEncryption, signatureBytes: ASN1BitString(bytes: ArraySlice(raw)))
        default:
            throw CardDeskError(.unsupportedCard, "The key in slot \(slot) is of a type CardDesk does not use (PIV algorithm \(Hex.string([algorithm]))).")
        }
    }

    /// The PIV algorithm of the key in `slot`.
    private func keyAlgorithm(of slot: CardSlot, _ piv: PIVClient) async throws -> UInt8 {
        if let known = state.withLock({ $0.algorithms[slot.keyReference] }) { return known }
        var algorithm = try await piv.metadata(slot.keyReference)?.value(0x01)?.first
        if algorithm == nil, let certificate = try await piv.certificate(forKey: slot.keyReference) {
            algorithm = P256.Signing.PublicKey(certificate.publicKey) != nil ? PIV.KeyAlgorithm.eccP256
                : _RSA.Signing.PublicKey(certificate.publicKey)?.keySizeInBits == 2048 ? PIV.KeyAlgorithm.rsa2048 : nil
        }
        guard let algorithm else { throw CardDeskError(.invalidInput, "The card has no key in slot \(slot).") }
        state.withLock { $0.algorithms[slot.keyReference] = algorithm }
        return algorithm
    }

    public func certificate(in slot: CardSlot) async throws -> Certificate? {
        try await selected().certificate(forKey: slot.keyReference)
    }

    public func reset() async throws {
        try await client.channel.transport.reset()
        state.withLock { $0 = (false, false, [:]) }
    }
}
