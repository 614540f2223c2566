import CardDeskCore
public import CardDeskStore
public import Logging

/// Answers OCSP requests about the certificates of every issuing CA, signing with the CA that issued them.
public struct OCSPResponder: Sendable {
    let hierarchy: CAHierarchy
    let status: any CertificateStatusReader
    let clock: any WallClock
    /// How long a `good` or `revoked` answer may be cached by relying parties.
    let validitySeconds: Int64

    public init(hierarchy: CAHierarchy, status: any CertificateStatusReader, clock: any WallClock = SystemClock(), validitySeconds: Int64 = 3600) {
        self.hierarchy = hierarchy
        self.status = status
        self.clock = clock
        self.validitySeconds = validitySeconds
    }

    /// Always returns a DER OCSPResponse: malformed input gets `malformedRequest`, a request about no CA of ours
    /// gets `unauthorized`, a storage failure `tryLater`.
    public func respond(to requestDER: [UInt8], logger: Logger? = nil) async -> [UInt8] {
        let request: OCSPRequest
        do {
            request = try OCSPRequest(derEncoded: requestDER)
        } catch {
            logger?.info("OCSP request refused", metadata: ["reason": "\(error)"])
            return OCSPResponse.failure(.malformedRequest)
        }
        let issuers = CertificateProfileKind.allCases.map(hierarchy.issuer)
        guard let signer = request.certIDs.lazy.compactMap({ id in issuers.first(where: id.matches) }).first else {
            return OCSPResponse.failure(.unauthorized)
        }
        let now = clock.now()
        do {
            var responses: [OCSPResponse.SingleResponse] = []
            for certID in request.certIDs {
                var answer = OCSPResponse.CertStatus.unknown
                if certID.matches(signer), let record = try await status.certificate(serial: certID.serial), record.profile == signer.profile {
                    switch record.status {
                    case .good:
                        answer = .good
                    case .revoked:
                        let reason = record.revocationReason.flatMap { $0 == .unspecified ? nil : $0 }
                        answer = .revoked(at: record.revokedAt ?? now, reason: reason)
                    }
                }
                responses.append(.init(certID: certID, status: answer, thisUpdate: now, nextUpdate: now.adding(seconds: validitySeconds)))
            }
            return try await OCSPResponse.sign(by: signer, responses: responses, producedAt: now, nonce: request.nonce)
        } catch {
            logger?.error("OCSP response failed", metadata: ["error": "\(error)"])
            return OCSPResponse.failure(.tryLater)
        }
    }
}
