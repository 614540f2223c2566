public import Crypto
public import Foundation

/// HMAC-SHA256 under one key, keyed once: each code starts from a copy of the keyed state. Keying (the key padded,
/// XORed and hashed into both halves) costs more than the code of a short message itself, and the audit chain and the
/// card challenges compute one or two codes per request under the same key.
public struct KeyedMAC: Sendable {
    private let keyed: HMAC<SHA256>

    public init(key: SymmetricKey) {
        keyed = HMAC(key: key)
    }

    /// The same code as `HMAC<SHA256>.authenticationCode(for: data, using: key)`.
    public func code<D: DataProtocol>(for data: D) -> HashedAuthenticationCode<SHA256> {
        var mac = keyed
        mac.update(data: data)
        return mac.finalize()
    }
}
