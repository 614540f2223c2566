import CardDeskCore
public import Foundation
import Crypto
public import SwiftASN1
public import X509

/// A key that lives on a card, as swift-certificates' `CustomPrivateKey`: signing goes to the card (which asks for
/// its PIN to have been verified), so CSRs and challenge signatures are made without the key ever leaving the card.
public struct CardPrivateKey: CustomPrivateKey {
    let session: any SmartcardSession
    public let slot: CardSlot
    public let publicKey: Certificate.PublicKey

    public init(session: any SmartcardSession, slot: CardSlot, publicKey: Certificate.PublicKey) {
        self.session = session
        self.slot = slot
        self.publicKey = publicKey
    }

    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm {
        P256.Signing.PublicKey(publicKey) != nil ? .ecdsaWithSHA256 : .sha256WithRSAEncryption
    }

    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] { [defaultSignatureAlgorithm] }

    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        throw CardDeskError(.internalFailure, "A card signs asynchronously only.")
    }

    public func signAsynchronously(bytes: some DataProtocol & Sendable, signatureAlgorithm: Certificate.SignatureAlgorithm) async throws -> Certificate.Signature {
        guard signatureAlgorithm == defaultSignatureAlgorithm else {
            throw CardDeskError(.internalFailure, "The card key in slot \(slot) signs with \(defaultSignatureAlgorithm) only.")
        }
        return try await session.sign(Array(bytes), with: slot)
    }

    /// A certificate signing request for this key, signed on the card (the CA sets the real subject; `commonName`
    /// only labels the request).
    public func signingRequest(commonName: String) async throws -> CertificateSigningRequest {
        try await CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(commonName) }, asyncPrivateKey: .init(self),
            attributes: .init(), signatureAlgorithm: defaultSignatureAlgorithm
        )
    }

    /// The same request, DER-encoded.
    public func signingRequestDER(commonName: String) async throws -> [UInt8] {
        var coder = DER.Serializer()
        try coder.serialize(try await signingRequest(commonName: commonName))
        return coder.serializedBytes
    }

    public static var defaultPEMDiscriminator: String { "CARD KEY" }

    public func serialize(into coder: inout DER.Serializer) throws {
        throw CardDeskError(.internalFailure, "Card keys never leave the card.")
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.slot == rhs.slot && lhs.publicKey == rhs.publicKey }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(slot)
        hasher.combine(publicKey)
    }
}
