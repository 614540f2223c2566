public import CardDeskCore
public import CardDeskStore
public import Logging
import Synchronization

/// Answers OCSP requests about the certificates of every issuing CA, signed by that CA's delegated responder.
public struct OCSPResponder: Sendable {
    let hierarchy: CAHierarchy
    let status: any CertificateStatusReader
    let clock: any WallClock
    /// How long a `good` or `revoked` answer may be cached by relying parties.
    let validitySeconds: Int64
    public let responders: DelegatedOCSPResponders
    /// Signed answers to nonce-less questions, reused while the statuses they state are still the stored ones.
    let answers = SignedAnswers(capacity: 50_000)

    /// - Parameter audit: where each responder certificate is recorded (nil: nowhere, for tests of the encoding).
    public init(
        hierarchy: CAHierarchy, status: any CertificateStatusReader, clock: any WallClock = SystemClock(), validitySeconds: Int64 = 3600,
        audit: (any AuditLogWriter)? = nil
    ) {
        self.hierarchy = hierarchy
        self.status = status
        self.clock = clock
        self.validitySeconds = validitySeconds
        // A responder lives at least two days, and at least four answers' validity.
        self.responders = DelegatedOCSPResponders(hierarchy: hierarchy, clock: clock, lifetimeSeconds: max(2 * 86_400, 4 * validitySeconds), audit: audit)
    }

    /// Returns a DER OCSPResponse: malformed input gets `malformedRequest`, a request about no CA of ours
    /// gets `unauthorized`, a storage failure `tryLater`. Throws `hsmUnavailable` only when no valid responder exists
    /// and the HSM that would certify one is away (the HTTP layer answers 503).
    public func respond(to requestDER: [UInt8], logger: Logger? = nil) async throws(CardDeskError) -> [UInt8] {
        try await answer(to: requestDER, logger: logger).der
    }

    /// A response and what an HTTP cache needs to know about it (RFC 5019 §6).
    public struct Answer: Sendable {
        public let der: [UInt8]
        /// Set only for a successful answer without a nonce: the times it may be cached between.
        public let cacheable: (thisUpdate: Timestamp, nextUpdate: Timestamp)?
    }

    /// Like `respond`, with the caching facts of the answer.
    public func answer(to requestDER: [UInt8], logger: Logger? = nil) async throws(CardDeskError) -> Answer {
        let request: OCSPRequest
        do {
            request = try OCSPRequest(derEncoded: requestDER)
        } catch {
            logger?.info("OCSP request refused", metadata: ["reason": "\(error)"])
            return Answer(der: OCSPResponse.failure(.malformedRequest), cacheable: nil)
        }
        let issuers = CertificateProfileKind.allCases.map(hierarchy.issuer)
        guard let signer = request.certIDs.lazy.compactMap({ id in issuers.first(where: id.matches) }).first else {
            return Answer(der: OCSPResponse.failure(.unauthorized), cacheable: nil)
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
            // The same question with the same statuses, answered recently: the signed answer is reused (its
            // signature is the expensive part); the statuses were read again just now, so a revocation, made by this
            // process or any other, is in the very next answer.
            let key = request.nonce == nil ? request.certIDs.flatMap(\.encoded) : nil
            let statuses = responses.map(\.status)
            if let key, let reused = answers.reusable(key, statuses: statuses, now: now) {
                return Answer(der: reused.der, cacheable: (reused.thisUpdate, reused.nextUpdate))
            }
            let responder = try await responders.signer(for: signer)
            // No answer outlives the certificate of the responder that signs it.
            let capped = responses.map { response in
                OCSPResponse.SingleResponse(
                    certID: response.certID, status: response.status, thisUpdate: response.thisUpdate,
                    nextUpdate: response.nextUpdate.map { min($0, responder.notAfter) }
                )
            }
            let der = try await OCSPResponse.sign(by: responder, responses: capped, producedAt: now, nonce: request.nonce)
            // An answer to a request with a nonce is for that request only; the others may be cached until the
            // earliest nextUpdate.
            let nextUpdate = capped.compactMap(\.nextUpdate).min()
            if let key, let nextUpdate {
                answers.keep(key, .init(statuses: statuses, der: der, thisUpdate: now, nextUpdate: nextUpdate,
                                        refreshAfter: min(nextUpdate, now.adding(seconds: validitySeconds / 2))))
            }
            return Answer(der: der, cacheable: request.nonce == nil ? nextUpdate.map { (now, $0) } : nil)
        } catch let error as CardDeskError where error.code == .hsmUnavailable {
            logger?.error("OCSP response failed: no responder", metadata: ["error": "\(error.reason)"])
            throw error
        } catch {
            logger?.error("OCSP response failed", metadata: ["error": "\(error)"])
            return Answer(der: OCSPResponse.failure(.tryLater), cacheable: nil)
        }
    }
}

/// Signed OCSP answers by question (the request's CertIDs, byte for byte), bounded in number. An answer is reused
/// only for the same statuses and until half its validity has passed, so a client or cache sees a fresh one at least
/// twice per validity period.
final class SignedAnswers: Sendable {
    struct Entry: Sendable {
        let statuses: [OCSPResponse.CertStatus]
        let der: [UInt8]
        let thisUpdate: Timestamp
        let nextUpdate: Timestamp
        let refreshAfter: Timestamp
    }

    private let entries = Mutex<[[UInt8]: Entry]>([:])
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func reusable(_ key: [UInt8], statuses: [OCSPResponse.CertStatus], now: Timestamp) -> Entry? {
        entries.withLock { entries in
            guard let entry = entries[key], entry.statuses == statuses, now < entry.refreshAfter else { return nil }
            return entry
        }
    }

    func keep(_ key: [UInt8], _ entry: Entry) {
        entries.withLock { entries in
            if entries.count >= capacity, entries[key] == nil {
                // Full: a tenth goes (which tenth does not matter: any answer can be signed again).
                for stale in entries.keys.prefix(max(1, capacity / 10)) { entries[stale] = nil }
            }
            entries[key] = entry
        }
    }
}
