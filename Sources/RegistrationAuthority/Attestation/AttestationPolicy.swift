public import CardDeskCore
import Foundation
import Smartcard
import SwiftASN1
public import X509

/// Key attestation: proof that a key was generated on a card (and so cannot have been copied off it), in the form
/// YubiKeys give it. The card's attestation key (slot F9) signs a certificate for the new key; its own certificate is
/// signed by the card's manufacturer (Yubico, or CardDesk's virtual-card manufacturer). The server accepts a CSR
/// only when the attestation chains to a trusted manufacturer and certifies exactly the CSR's key, unless the
/// deployment does not require attestation (generic PIV cards cannot attest).
public struct AttestationPolicy: Sendable {
    public let required: Bool
    /// Manufacturers' roots, and any intermediates their attestation certificates are signed by.
    public let trusted: [Certificate]
    /// Cards' attestation certificates whose signature by a trusted manufacturer has been checked, by their DER.
    /// A renewal sends the same one with each of its keys: its signature (a P-256 verification, the cost of 2.5
    /// signatures) is checked once. Whether it verifies depends on its bytes and `trusted` alone, both fixed here;
    /// its validity dates are checked at every use.
    private let verifiedDevices = SharedMutex(VerifiedDevices())

    /// At most this many are remembered (a few hundred kilobytes); the oldest make room.
    static let verifiedDevicesLimit = 1_024

    public init(required: Bool, trusted: [Certificate]) {
        self.required = required
        self.trusted = trusted
    }

    /// Checks the card's attestation of the key in `csr`. With no attestation: refused when attestation is required.
    public func check(csr: CertificateSigningRequest, attestation: [UInt8]?, issuer issuerDER: [UInt8]?, now: Timestamp) throws {
        guard let attestation, let issuerDER else {
            if required {
                throw CardDeskError(
                    .badProofOfPossession,
                    "This key comes without the card's attestation that it was generated on the card, which this service requires. Use a card that can attest its keys (a YubiKey, or a CardDesk virtual card), or ask your Registration Authority."
                )
            }
            return
        }
        let refused = { (why: String) in
            CardDeskError(.badProofOfPossession, "The card's attestation of this key was refused: \(why). Ask your Registration Authority.")
        }
        let attested: Certificate, device: Certificate
        let known = verifiedDevices.withLock { $0.certificates[issuerDER] }
        do {
            attested = try Certificate(derEncoded: attestation)
            device = try known ?? Certificate(derEncoded: issuerDER)
        } catch {
            throw refused("it is not a certificate")
        }
        let date = Date(timeIntervalSince1970: Double(now.millisecondsSince1970) / 1000)
        guard device.notValidBefore <= date, date <= device.notValidAfter else { throw refused("the card's attestation certificate is not valid now") }
        if known == nil {
            guard trusted.contains(where: { $0.subject == device.issuer && $0.publicKey.isValidSignature(device.signature, for: device) }) else {
                throw refused("the card was not made by a manufacturer this service trusts")
            }
            verifiedDevices.withLock { $0.remember(device, as: issuerDER, limit: Self.verifiedDevicesLimit) }
        }
        guard attested.issuer == device.subject, device.publicKey.isValidSignature(attested.signature, for: attested) else {
            throw refused("it was not signed by the card's attestation key")
        }
        guard attested.publicKey == csr.publicKey else {
            throw refused("it is for another key than the one in the request")
        }
    }

    /// Checked attestation certificates, oldest first in `order`.
    struct VerifiedDevices: Sendable {
        var certificates: [[UInt8]: Certificate] = [:]
        var order: [[UInt8]] = []
        var start = 0

        mutating func remember(_ certificate: Certificate, as der: [UInt8], limit: Int) {
            guard certificates.updateValue(certificate, forKey: der) == nil else { return }
            order.append(der)
            if certificates.count > limit {
                certificates[order[start]] = nil
                start += 1
                // The forgotten part of the queue is dropped once it is as long as the rest.
                if start * 2 >= order.count {
                    order.removeFirst(start)
                    start = 0
                }
            }
        }
    }

    /// Reads PEM certificates (one or more per file).
    public static func certificates(pemFile path: String) throws -> [Certificate] {
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) }
        } catch {
            throw CardDeskError(.configuration, "The attestation root file \(path) cannot be read as PEM certificates (\(error)).")
        }
    }
}
