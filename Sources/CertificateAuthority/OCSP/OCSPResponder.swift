public import CardDeskCore
public import CardDeskStore
public import Logging
import Synchronization

/// Answers OCSP requests about the certificates of every issuing CA, signed by that CA's delegated responder.
///
/// The common question (RFC 5019: one certificate, SHA-1 CertID, no nonce) is answered without signing and, most of
/// the time, without the store: answers are signed when a certificate is issued or revoked, kept in the store for
/// every instance, refreshed before `nextUpdate` (`refreshDue`), and held in memory. A revocation replaces the stored
/// answer in its own transaction and drops the one in this process's memory before it returns; other processes drop
/// theirs when they see it in the audit log (`followRevocations`, every quarter second). Other questions (nonces,
/// SHA-256 CertIDs, several certificates: outside RFC 5019's profile) are answered from the stored status and signed
/// live.
public struct OCSPResponder: Sendable, CertificateStatusListener {
    let hierarchy: CAHierarchy
    let status: any OCSPAnswerStore
    let clock: any WallClock
    /// How long a `good` or `revoked` answer may be cached by relying parties.
    let validitySeconds: Int64
    public let responders: DelegatedOCSPResponders
    /// Pre-signed answers held in memory (RFC 5019 questions), dropped when their certificate is revoked.
    let presigned: PresignedAnswers

    /// - Parameters:
    ///   - audit: where each responder certificate is recorded (nil: nowhere, for tests of the encoding).
    ///   - memoryCapacity: how many pre-signed answers are held in memory (about 600 bytes each).
    public init(
        hierarchy: CAHierarchy, status: any OCSPAnswerStore, clock: any WallClock = SystemClock(), validitySeconds: Int64 = 3600,
        audit: (any AuditLogWriter)? = nil, memoryCapacity: Int = 100_000
    ) {
        self.presigned = PresignedAnswers(capacity: memoryCapacity)
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
            // RFC 5019's question: answered from memory, else from the store, else signed now and kept for the next.
            if request.nonce == nil, request.certIDs.count == 1, let certID = request.certIDs.first, certID.hashAlgorithm == .sha1,
               let answer = try await presignedAnswer(serial: certID.serial, issuer: signer, now: now) {
                return Answer(der: answer.der, cacheable: (answer.thisUpdate, answer.nextUpdate))
            }
            // Anything else (or a serial that is not one of this CA's: unknown), signed now.
            let responder = try await responders.signer(for: signer)
            // No answer outlives the certificate of the responder that signs it.
            let nextUpdate = min(now.adding(seconds: validitySeconds), responder.notAfter)
            var responses: [OCSPResponse.SingleResponse] = []
            for certID in request.certIDs {
                var answer = OCSPResponse.CertStatus.unknown
                if certID.matches(signer), let record = try await status.certificate(serial: certID.serial), record.profile == signer.profile {
                    answer = OCSPResponse.CertStatus(record, now: now)
                }
                responses.append(.init(certID: certID, status: answer, thisUpdate: now, nextUpdate: nextUpdate))
            }
            let der = try await OCSPResponse.sign(by: responder, responses: responses, producedAt: now, nonce: request.nonce)
            // An answer to a request with a nonce is for that request only; the others may be cached until nextUpdate.
            return Answer(der: der, cacheable: request.nonce == nil ? (now, nextUpdate) : nil)
        } catch let error as CardDeskError where error.code == .hsmUnavailable {
            logger?.error("OCSP response failed: no responder", metadata: ["error": "\(error.reason)"])
            throw error
        } catch {
            logger?.error("OCSP response failed", metadata: ["error": "\(error)"])
            return Answer(der: OCSPResponse.failure(.tryLater), cacheable: nil)
        }
    }
}

extension OCSPResponse.CertStatus {
    /// What a stored certificate's status says in an answer (RFC 5280: the reason "unspecified" is left out).
    init(_ record: CertificateRecord, now: Timestamp) {
        switch record.status {
        case .good:
            self = .good
        case .revoked:
            self = .revoked(at: record.revokedAt ?? now, reason: record.revocationReason.flatMap { $0 == .unspecified ? nil : $0 })
        }
    }
}

extension OCSPResponder {
    /// The pre-signed answer about one of `issuer`'s certificates, signing it now if none is fresh; nil when the
    /// serial is not one of that CA's certificates.
    func presignedAnswer(serial: SerialNumber, issuer: IssuingCA, now: Timestamp) async throws -> PresignedOCSPAnswer? {
        let generation = presigned.generation
        if let held = presigned.fresh(serial, profile: issuer.profile, now: now) { return held }
        if let stored = try await status.presignedAnswer(serial: serial), stored.profile == issuer.profile, stored.thisUpdate <= now, now < stored.refreshAfter {
            presigned.keep(stored, ifGeneration: generation)
            return stored
        }
        guard let record = try await status.certificate(serial: serial), record.profile == issuer.profile else { return nil }
        let answer = try await presign(record, now: now)
        try await status.savePresignedAnswers([answer])
        presigned.keep(answer, ifGeneration: generation)
        return answer
    }

    /// Signs the answer about one certificate as a relying party asks for it (SHA-1 CertID, no nonce).
    func presign(_ record: CertificateRecord, now: Timestamp) async throws -> PresignedOCSPAnswer {
        let issuer = hierarchy.issuer(record.profile)
        let responder = try await responders.signer(for: issuer)
        // No answer outlives the certificate of the responder that signs it, and each is signed again at half its life.
        let nextUpdate = min(now.adding(seconds: validitySeconds), responder.notAfter)
        let refreshAfter = Timestamp(millisecondsSince1970: now.millisecondsSince1970 + (nextUpdate.millisecondsSince1970 - now.millisecondsSince1970) / 2)
        let certID = try OCSPCertID(serial: record.serial, issuer: issuer)
        let der = try await OCSPResponse.sign(
            by: responder, responses: [.init(certID: certID, status: OCSPResponse.CertStatus(record, now: now), thisUpdate: now, nextUpdate: nextUpdate)], producedAt: now, nonce: nil
        )
        return PresignedOCSPAnswer(
            serial: record.serial, profile: record.profile, status: record.status, der: der, thisUpdate: now, nextUpdate: nextUpdate, refreshAfter: refreshAfter
        )
    }

    // MARK: Keeping answers ahead of the questions

    /// The answer about a certificate being issued or revoked, signed now so that it is stored with the change.
    public func answerAhead(for record: CertificateRecord) async -> AnswerSignedAhead? {
        let generation = presigned.generation
        guard let answer = try? await presign(record, now: clock.now()) else { return nil }
        return AnswerSignedAhead(answer: answer, mark: generation)
    }

    /// A certificate was issued, and its answer stored with it: held in memory before anyone asks (unless something
    /// was withdrawn from memory since it was signed: a revocation of it may have been). Without one (it could not be
    /// signed), the first question signs it.
    public func certificateIssued(_ record: CertificateRecord, ahead: AnswerSignedAhead?) async {
        if let ahead { presigned.keep(ahead.answer, ifGeneration: ahead.mark) }
    }

    /// A certificate was revoked (its stored answer replaced, or deleted, in the same transaction): this process
    /// forgets the old answer before the revocation is reported done, and holds the new one (a revocation is final).
    public func certificateRevoked(_ record: CertificateRecord, ahead: AnswerSignedAhead?) async {
        presigned.drop(record.serial, replacingWith: ahead?.answer)
    }

    /// Signs again the stored answers due (half their validity gone), up to `limit`; answers about expired
    /// certificates are deleted instead. Returns how many were signed.
    @discardableResult
    public func refreshDue(limit: Int = 50_000) async throws -> Int {
        var signed = 0
        while signed < limit {
            let now = clock.now()
            let due = try await status.certificatesWithAnswersDue(at: now, limit: min(1000, limit - signed))
            if due.isEmpty { break }
            var fresh: [PresignedOCSPAnswer] = []
            var gone: [SerialNumber] = []
            for record in due {
                guard record.notAfter > now else {
                    gone.append(record.serial)
                    continue
                }
                fresh.append(try await presign(record, now: now))
            }
            let generation = presigned.generation
            try await status.savePresignedAnswers(fresh)
            try await status.deletePresignedAnswers(gone)
            presigned.drop(gone)
            for answer in fresh { presigned.keep(answer, ifGeneration: generation) }
            signed += fresh.count
            if fresh.isEmpty { break }
        }
        return signed
    }

    /// Follows revocations made by any process (in the audit log) and drops their answers from memory, until the
    /// task is cancelled. Run by every server instance.
    public func followRevocations(every interval: Duration = .milliseconds(250), logger: Logger? = nil) async {
        var last: Int64
        do {
            last = try await status.currentAuditSequence()
        } catch {
            // Without a starting point, forget everything held: nothing stale can be served.
            logger?.warning("Cannot read the audit head to follow revocations", metadata: ["error": "\(error)"])
            last = 0
        }
        presigned.dropAll()
        while !Task.isCancelled {
            do {
                while true {
                    let revoked = try await status.revocations(after: last, limit: 1000)
                    guard let newest = revoked.last?.sequence else { break }
                    presigned.drop(revoked.map(\.serial))
                    last = newest
                }
            } catch {
                logger?.warning("Cannot follow revocations: answers held in memory are dropped", metadata: ["error": "\(error)"])
                presigned.dropAll()
            }
            try? await Task.sleep(for: interval)
        }
    }
}

/// Pre-signed answers held in memory by serial, bounded in number. `generation` moves on every drop: an answer read
/// or signed before a drop is not kept after it (it may state what the drop withdrew).
final class PresignedAnswers: Sendable {
    private struct State {
        var entries: [SerialNumber: PresignedOCSPAnswer] = [:]
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    var generation: UInt64 { state.withLock { $0.generation } }

    func fresh(_ serial: SerialNumber, profile: CertificateProfileKind, now: Timestamp) -> PresignedOCSPAnswer? {
        state.withLock { state in
            guard let answer = state.entries[serial], answer.profile == profile, answer.thisUpdate <= now, now < answer.refreshAfter else { return nil }
            return answer
        }
    }

    func keep(_ answer: PresignedOCSPAnswer, ifGeneration generation: UInt64) {
        state.withLock { state in
            guard state.generation == generation else { return }
            insert(answer, into: &state)
        }
    }

    func drop(_ serials: [SerialNumber]) {
        guard !serials.isEmpty else { return }
        state.withLock { state in
            state.generation &+= 1
            for serial in serials { state.entries[serial] = nil }
        }
    }

    /// Drops what is held about `serial` (as `drop` does) and, at once, holds `answer` in its place.
    func drop(_ serial: SerialNumber, replacingWith answer: PresignedOCSPAnswer?) {
        state.withLock { state in
            state.generation &+= 1
            state.entries[serial] = nil
            if let answer { insert(answer, into: &state) }
        }
    }

    /// Holds `answer`, making room (a tenth of the entries) when full.
    private func insert(_ answer: PresignedOCSPAnswer, into state: inout State) {
        guard capacity > 0 else { return }
        if state.entries.count >= capacity, state.entries[answer.serial] == nil {
            for stale in state.entries.keys.prefix(max(1, capacity / 10)) { state.entries[stale] = nil }
        }
        state.entries[answer.serial] = answer
    }

    func dropAll() {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeAll()
        }
    }
}
