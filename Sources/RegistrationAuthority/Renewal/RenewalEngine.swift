public import CardDeskAPI
public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
import Crypto
import Foundation
public import Smartcard
import SwiftASN1
public import X509

/// Something that follows a renewal's commits (`save`, `issue`, `revoke`) as they happen: the seam through which the
/// crash tests stop a server around a commit (Tests/Support/ServerFaults), with nothing in production that can.
public protocol RenewalCommitWatch: Sendable {
    func willCommit(_ name: String)
    func didCommit(_ name: String)
}

/// The server side of self-renewal. The agent drives it step by step; every step is checked against the stored
/// state, stored before it is answered, and safe to repeat.
///
/// Authentication: the card signs a fresh, single-use server challenge with its current authentication key. The
/// engine then hands out a bearer token for this renewal only. Passcodes never reach the server.
public struct RenewalEngine: Sendable {
    let authority: CertificateAuthority
    let store: any RenewalStore
    let masterKey: MasterKey
    public let clock: any WallClock
    public let window: RenewalWindow
    public let attestation: AttestationPolicy
    /// How many times in a row a holder may renew a card themselves before their RA must (0: no limit).
    public let selfRenewalLimit: Int
    /// The key of the card challenges' MACs (from the master key: every instance checks the others' challenges).
    let challengeKey: KeyedMAC
    /// How long a renewal token is valid after the last (re)authentication.
    static let tokenLifetime: Int64 = 600
    /// Told just before and just after each of the renewal's commits (nil in production; see `RenewalCommitWatch`).
    let commitWatch: (any RenewalCommitWatch)?
    /// How long a finished renewal is reported as such to a card that asks again.
    static let recentlyFinished: Int64 = 86_400

    public init(
        authority: CertificateAuthority, store: any RenewalStore, masterKey: MasterKey, clock: any WallClock, window: RenewalWindow = RenewalWindow(),
        attestation: AttestationPolicy, commitWatch: (any RenewalCommitWatch)? = nil, selfRenewalLimit: Int = 2
    ) {
        self.selfRenewalLimit = selfRenewalLimit
        self.commitWatch = commitWatch
        self.attestation = attestation
        self.authority = authority
        self.store = store
        self.masterKey = masterKey
        self.challengeKey = KeyedMAC(key: masterKey.derivedKey(label: CardChallenges.keyLabel))
        self.clock = clock
        self.window = window
    }

    // MARK: What the agent sees

    public func status(cardSerial: String) async throws -> CardRenewalStatus {
        try await status(try await inForce(try Identifiers.cardSerial(cardSerial)))
    }

    /// The renewal status of a card already read (sign-in has it).
    func status(_ inForce: CardInForce) async throws -> CardRenewalStatus {
        let card = inForce.card
        let inProgress = inForce.active != nil
        let verdict = window.verdict(earliestExpiry: inForce.earliestExpiry, now: clock.now())
        var message: String
        let opensOn: Timestamp?
        switch verdict {
        case .open(let closes):
            (message, opensOn) = ("Renewal is available until \(closes.dateDescription).", nil)
        case .opensOn(let date):
            (message, opensOn) = (window.refusal(verdict)!.reason, date)
        case .expired:
            (message, opensOn) = (window.refusal(verdict)!.reason, nil)
        }
        // An unfinished renewal can always be finished, even once the window has passed its start.
        var available: Bool = switch verdict {
        case .open: true
        case .opensOn: inProgress
        case .expired: false
        }
        if available, !inProgress, let refusal = try await selfRenewalRefusal(card.serial) {
            available = false
            message = refusal.reason
        }
        return CardRenewalStatus(
            cardSerial: card.serial, renewalAvailable: available, opensOn: opensOn, message: message, renewalInProgress: inProgress,
            pukRotationPending: card.pukRotationPending
        )
    }

    // MARK: Steps

    /// A fresh challenge for the card to sign (32 random bytes, base64url), valid two minutes, single use.
    public func challenge() async throws -> String {
        CardChallenges.issue(purpose: "renewal", key: challengeKey, clock: clock)
    }


    /// Who renews a card other than its holder: an RA at their desk, with the holder's card in their second reader
    /// and the holder typing the passcode there. Decided by the RA console (`RAConsole.renewCard`) before it starts.
    public struct RADesk: Sendable {
        /// `user:ID` of the RA, as the audit log names people.
        public let actor: String
        /// "RA Agent for RBQ".
        public let desk: String
        /// The RA's role may renew certificates that have expired (not only those falling due).
        public let mayRenewExpired: Bool

        public init(actor: String, desk: String, mayRenewExpired: Bool) {
            self.actor = actor
            self.desk = desk
            self.mayRenewExpired = mayRenewExpired
        }
    }

    /// Starts a renewal, or resumes the card's unfinished one, after checking the card's signature over the challenge.
    /// With `ra`, an RA renews the card for its holder: certificates that expired may be renewed (if the RA's role
    /// may), and the self-renewal limit does not apply (an RA renewal starts its count again).
    ///
    /// `encryptedWitness`: the card's management-key witness, when the agent knows the card's management-key algorithm
    /// (the card said): the answer comes with the renewal (`RenewalView.administration`), in the same transaction, so
    /// the agent needs no administration step. Given only to a renewal that goes on, never with a refusal.
    public func start(
        cardSerial: String, challenge: String, signature: [UInt8], by ra: RADesk? = nil, encryptedWitness: [UInt8]? = nil
    ) async throws -> RenewalView {
        let now = clock.now()
        let cardSerial = try Identifiers.cardSerial(cardSerial)
        // Either key pair may vouch: while one slot is being renewed, the other still matches its certificate.
        // The challenge is used in the transaction that starts or resumes the renewal (a refusal leaves it unused).
        let (card, inForce, signer, use) = try await CardChallenges.signer(
            of: signature, over: RenewalStartMessage.make(challenge: challenge, cardSerial: cardSerial), challenge: challenge, purpose: "renewal",
            cardSerial: cardSerial, retry: "Run the renewal again.", store: store, key: challengeKey, now: now, anyKeyPair: true, deferUse: true
        )
        // Resuming too: a renewal is never carried on by an expired certificate, unless an RA allowed to vouches for it.
        guard signer.notAfter > now || ra?.mayRenewExpired == true else {
            throw CardDeskError(
                .certificatesExpired,
                ra == nil
                    ? "Your authentication certificate expired on \(signer.notAfter.dateDescription), so the card cannot renew itself: ask your Registration Authority."
                    : "This card's certificates expired on \(signer.notAfter.dateDescription): renewing expired certificates needs an RA Agent or RA Manager."
            )
        }
        let by = ra.map { " by \($0.desk) (\($0.actor))" } ?? ""
        if inForce.active != nil {
            return try await open(inForce, by: ra?.actor, now: now, details: "resumed\(by)", using: use, witness: encryptedWitness)
        }
        let verdict = window.verdict(earliestExpiry: inForce.earliestExpiry, now: now)
        var refusal = window.refusal(verdict)
        if let ra {
            switch verdict {
            case .open: break
            case .expired: refusal = ra.mayRenewExpired ? nil : CardDeskError(
                .certificatesExpired, "This card's certificates have expired: renewing expired certificates needs an RA Agent or RA Manager."
            )
            case .opensOn(let date): refusal = CardDeskError(
                .renewalNotOpen, "These certificates do not fall due yet: renewal opens on \(date.dateDescription), \(window.days) days before they expire."
            )
            }
        }
        if let refusal {
            // Run again right after a renewal finished (say the agent was stopped before it could report success):
            // answer with that finished renewal rather than a refusal.
            if let latest = try await store.latestRenewal(cardSerial: card.serial), latest.status == .done,
               latest.updatedAt.adding(seconds: Self.recentlyFinished) > now {
                return try await view(latest, state: try RenewalState(stored: latest.state), token: nil)
            }
            throw refusal
        }
        if ra == nil, let refusal = try await selfRenewalRefusal(card.serial) { throw refusal }
        return try await open(inForce, by: ra?.actor, now: now, details: "started\(by)", using: use, witness: encryptedWitness)
    }

    /// An RA repairs the card at their desk: new keys and certificates on the same card, whatever the renewal window,
    /// and also when a key no longer matches its certificate (so the card cannot sign the start of a renewal). The RA
    /// vouches for the card in their second reader, as when issuing one; the card still takes part in every step (it
    /// answers the management-key witness, generates the keys and proves them by signing). Resumes an unfinished renewal.
    public func startRepair(cardSerial: String, by ra: RADesk) async throws -> RenewalView {
        let inForce = try await inForce(try Identifiers.cardSerial(cardSerial))
        let details = (inForce.active == nil ? "repair started" : "resumed as a repair") + " by \(ra.desk) (\(ra.actor))"
        return try await open(inForce, by: ra.actor, now: clock.now(), details: details, using: nil)
    }

    /// Resumes the card's unfinished renewal, or starts one for every certificate in force, with a fresh token (and,
    /// in the same transaction, the use of the challenge that vouched for the card). `performedBy`: the RA doing it.
    /// With the card's management-key witness, its answer too (see `administer`).
    private func open(
        _ inForce: CardInForce, by performedBy: String?, now: Timestamp, details: String, using challenge: ChallengeUse?, witness: [UInt8]? = nil
    ) async throws -> RenewalView {
        let card = inForce.card
        let token = CardChallenges.randomToken()
        var renewal: RenewalRecord
        var state: RenewalState
        var details = details
        if let active = inForce.active {
            (renewal, state) = active
            renewal.tokenHash = CardChallenges.hash(token)
            renewal.tokenExpiresAt = now.adding(seconds: Self.tokenLifetime)
            if let performedBy { renewal.performedBy = performedBy }
        } else {
            state = RenewalState(items: RenewalState.order.compactMap { profile in
                inForce.current[profile].map { RenewalState.Item(profile: profile, step: .pending, oldSerial: $0.serial) }
            })
            renewal = RenewalRecord(
                id: SecureRandom.uuid(), cardSerial: card.serial, userID: card.userID, status: .active,
                state: state.stored, tokenHash: CardChallenges.hash(token), tokenExpiresAt: now.adding(seconds: Self.tokenLifetime),
                version: 0, createdAt: now, updatedAt: now, performedBy: performedBy
            )
            details += ": " + state.items.map { "\($0.profile) \($0.oldSerial.hex)" }.joined(separator: ", ")
        }
        var administration: RenewalAPI.Administration?
        if let witness, !state.isDone {
            let (answer, steps) = try answerAdministration(witness, of: card, renewal: &renewal, state: &state)
            administration = RenewalAPI.Administration(witness: Data(answer.witness), challenge: Data(answer.challenge))
            details += "; card administration answered (\(steps))"
        }
        try await save(&renewal, details: details, using: challenge)
        return try await view(renewal, state: state, token: token, card: card, certificates: inForce.certificates, administration: administration)
    }

    /// Answers the card's management-key witness, relayed by the agent, so that the card lets the agent generate
    /// the key of `profile`'s slot and write its certificate. Only for the slot whose turn it is (the one before it
    /// done) and only while that slot is not done: at any other time the card stays closed. The card stays
    /// administered for the rest of its session, so the answer moves every item not done on (the later slots are
    /// still issued one at a time: see `submit`); `start` gives the same answer when the agent sends the witness there.
    public func administer(renewalID: String, token: String, profile: CertificateProfileKind, encryptedWitness: [UInt8]) async throws -> (witness: [UInt8], challenge: [UInt8]) {
        var (renewal, state) = try await load(renewalID, token: token)
        let index = try state.index(of: profile)
        guard state.items[index].step != .done else {
            throw CardDeskError(.notAuthorised, "The \(profile) certificate is already renewed: the card needs no administration for it.")
        }
        if let earlier = state.items[..<index].first(where: { $0.step != .done }) {
            throw CardDeskError(.notAuthorised, "The \(earlier.profile) certificate is renewed first: one key pair at a time.")
        }
        let card = try await requireCard(renewal.cardSerial)
        let (answer, steps) = try answerAdministration(encryptedWitness, of: card, renewal: &renewal, state: &state)
        try await save(&renewal, details: "\(profile): card administration answered (\(steps))")
        return answer
    }

    /// The card's witness answered with its management key, and the renewal's items moved on with it (the card stays
    /// administered for its session): the answer, and the steps for the audit entry. The caller stores the renewal.
    private func answerAdministration(
        _ witness: [UInt8], of card: CardRecord, renewal: inout RenewalRecord, state: inout RenewalState
    ) throws -> (answer: (witness: [UInt8], challenge: [UInt8]), steps: String) {
        let answer = try CardAdministration.answer(encryptedWitness: witness, key: try CardAdministration.managementKey(of: card, masterKey: masterKey))
        let steps = state.administrationAnswered()
        renewal.state = state.stored
        return (answer, steps)
    }

    /// Issues the new certificate for a CSR signed by the new key. Repeating it with the same key returns the same
    /// certificate; a different key (the card made another) gets a new certificate and the unused one is revoked.
    public func submit(
        renewalID: String, token: String, profile: CertificateProfileKind, csr csrDER: [UInt8], attestation: [UInt8]? = nil, attestationIssuer: [UInt8]? = nil
    ) async throws -> [UInt8] {
        var (renewal, state) = try await load(renewalID, token: token)
        return try await submit(&renewal, &state, profile: profile, csr: csrDER, attestation: attestation, attestationIssuer: attestationIssuer).der
    }

    /// `submit` for a renewal already loaded (and its token checked): `renewal` and `state` are left as stored after.
    func submit(
        _ renewal: inout RenewalRecord, _ state: inout RenewalState, profile: CertificateProfileKind, csr csrDER: [UInt8], attestation: [UInt8]?,
        attestationIssuer: [UInt8]?
    ) async throws -> (serial: SerialNumber, der: [UInt8]) {
        // Parsed only for a caller holding the renewal's token.
        let csr = try CertificateRequestCheck.parse(csrDER)
        do {
            try self.attestation.check(csr: csr, attestation: attestation, issuer: attestationIssuer, now: clock.now())
        } catch let error as CardDeskError {
            _ = try? await store.appendAudit(AuditEvent(
                action: .renewalStep, actor: "card:\(renewal.cardSerial)", subject: "user:\(renewal.userID)", outcome: .failure,
                details: "renewal=\(renewal.id) \(profile): key attestation refused", time: clock.now()
            ))
            throw error
        }
        let index = try state.index(of: profile)
        let item = state.items[index]
        guard item.step >= .keyAuthorised, item.step != .done else {
            throw CardDeskError(.notAuthorised, "The \(profile) key was not generated in this renewal.")
        }
        // One key pair at a time: the other stays whole (and vouches for the card) until this one is confirmed.
        if let unfinished = state.items[..<index].first(where: { $0.step != .done }) {
            throw CardDeskError(.notAuthorised, "The \(unfinished.profile) certificate is renewed first: one key pair at a time.")
        }
        // Whatever this renewal issued for this profile before (also a certificate whose issuance was stored but
        // whose step was not, when the server stopped in between).
        let earlier = try await store.certificates(renewalID: renewal.id).filter { $0.profile == profile && $0.status == .good }
        for record in earlier {
            let certificate = try Certificate(derEncoded: record.der)
            if certificate.publicKey == csr.publicKey {
                state.items[index].newSerial = record.serial
                if state.items[index].step < .issued { state.items[index].step = .issued }
                renewal.state = state.stored
                try await save(&renewal, details: "\(profile): certificate \(record.serial.hex) already issued for this key")
                return (record.serial, record.der)
            }
        }
        for record in earlier {
            // Issued for a key the card no longer holds: it can never be used, so it must not stay valid.
            _ = try await authority.revoke(
                serial: record.serial, reason: .cessationOfOperation, byRenewal: renewal.id, actor: "renewal:\(renewal.id)", current: record
            )
        }
        let prepared = try await authority.prepare(userID: renewal.userID, profile: profile, csr: csr)
        // The step is stored with the issuance, in its transaction: both or neither.
        var issuedState = state
        issuedState.items[index].newSerial = prepared.serial
        issuedState.items[index].step = .issued
        var issued = renewal
        issued.state = issuedState.stored
        let step = Self.step(&issued, details: "\(profile): issued \(prepared.serial.hex)", at: clock.now())
        commitWatch?.willCommit("issue")
        let certificate = try await authority.issue(
            prepared, actor: "renewal:\(renewal.id)", cardSerial: renewal.cardSerial, renewalID: renewal.id, step: { _ in step }
        )
        commitWatch?.didCommit("issue")
        (renewal, state) = (issued, issuedState)
        return (prepared.serial, try certificate.derEncoded())
    }

    /// The card proves it signs with the new key; the old certificate is then revoked (superseded).
    ///
    /// With `next`, the next key's certificate request comes in the same request (one round trip fewer): it is taken
    /// after the confirmation is stored, in a transaction of its own, as if sent apart (the agent made that key after
    /// writing this certificate, so the card held a whole pair throughout). The answer then carries the new
    /// certificate in `next`'s item. Sent again after a lost answer, each half finds its own work done and repeats
    /// its answer.
    public func confirm(
        renewalID: String, token: String, profile: CertificateProfileKind, signature: [UInt8], next: RenewalAPI.Submit? = nil
    ) async throws -> RenewalView {
        var (renewal, state) = try await load(renewalID, token: token)
        if let next, next.profile == profile {
            throw CardDeskError(.invalidInput, "The next certificate request is for the \(profile) key being confirmed: send it for the next key.")
        }
        try await confirm(&renewal, &state, profile: profile, signature: signature)
        if let next {
            let issued = try await submit(
                &renewal, &state, profile: next.profile, csr: Array(next.csr), attestation: next.attestation.map(Array.init),
                attestationIssuer: next.attestationIssuer.map(Array.init)
            )
            return try await view(renewal, state: state, token: nil, issued: issued)
        }
        // The last step says whether the card's PUK is still to be changed, so that the agent need not ask.
        let pukRotationPending = state.isDone ? try await requireCard(renewal.cardSerial).pukRotationPending : nil
        return try await view(renewal, state: state, token: nil, pukRotationPending: pukRotationPending)
    }

    /// `confirm` for a renewal already loaded: `renewal` and `state` are left as stored after (unchanged when the
    /// key was confirmed already).
    func confirm(_ renewal: inout RenewalRecord, _ state: inout RenewalState, profile: CertificateProfileKind, signature: [UInt8]) async throws {
        let index = try state.index(of: profile)
        let item = state.items[index]
        if item.step == .done { return }
        guard item.step >= .issued, let newSerial = item.newSerial, let record = try await store.certificate(serial: newSerial) else {
            throw CardDeskError(.notAuthorised, "The \(profile) certificate has not been issued yet.")
        }
        guard try CardChallenges.verify(signature, over: RenewalConfirmationMessage.make(renewalID: renewal.id, profile: profile, serial: newSerial), by: record) else {
            throw CardDeskError(.authenticationFailed, "The card did not prove it holds the new \(profile) key.")
        }
        state.items[index].step = .done
        renewal.state = state.stored
        if state.isDone { renewal.status = .done }
        let details = "\(profile): \(newSerial.hex) installed, \(item.oldSerial.hex) revoked (superseded)" + (state.isDone ? "; renewal complete" : "")
        if let old = try await store.certificate(serial: item.oldSerial), old.status == .good {
            // The step is stored with the revocation, in its transaction.
            let step = Self.step(&renewal, details: details, at: clock.now())
            commitWatch?.willCommit("revoke")
            _ = try await authority.revoke(
                serial: item.oldSerial, reason: .superseded, supersededBy: newSerial, byRenewal: renewal.id, actor: "renewal:\(renewal.id)", step: step,
                current: old
            )
            commitWatch?.didCommit("revoke")
        } else {
            try await save(&renewal, details: details)
        }
    }

    // MARK: Helpers

    /// The refusal when the card's holder has renewed it themselves as often in a row as the policy allows.
    func selfRenewalRefusal(_ cardSerial: String) async throws -> CardDeskError? {
        guard selfRenewalLimit > 0 else { return nil }
        let done = try await store.finishedSelfRenewals(cardSerial: cardSerial)
        guard done >= selfRenewalLimit else { return nil }
        return CardDeskError(
            .raRenewalRequired,
            "You have renewed this card yourself \(done == 1 ? "once" : "\(done) times") in a row, the most the policy allows: this time your Registration Authority must renew it. Take your card to them before your certificates expire."
        )
    }

    func inForce(_ serial: String) async throws -> CardInForce {
        try await CardInForce.load(serial, store: store)
    }

    func requireCard(_ serial: String) async throws -> CardRecord {
        try await CardInForce.requireCard(serial, store: store)
    }

    func load(_ id: String, token: String) async throws -> (RenewalRecord, RenewalState) {
        guard let id = try? Identifiers.requestID(id), let renewal = try await store.renewal(id: id) else {
            throw CardDeskError(.authenticationFailed, "There is no such renewal. Run the renewal again.")
        }
        guard ConstantTime.equal(CardChallenges.hash(token), renewal.tokenHash), clock.now() < renewal.tokenExpiresAt else {
            throw CardDeskError(.authenticationFailed, "The renewal session has expired. Run the renewal again to continue where it stopped.")
        }
        guard renewal.status != .cancelled else {
            throw CardDeskError(.authenticationFailed, "This renewal was stopped because a certificate of the card was revoked. Go to your Registration Authority.")
        }
        return (renewal, try RenewalState(stored: renewal.state))
    }

    /// Stores the renewal's next step (with the use of the challenge that started or resumed it, if given).
    func save(_ renewal: inout RenewalRecord, details: String, using challenge: ChallengeUse? = nil) async throws {
        let step = Self.step(&renewal, details: details, at: clock.now())
        commitWatch?.willCommit("save")
        if let challenge {
            guard try await store.saveRenewal(step.renewal, audit: step.audit, using: challenge) else {
                throw CardChallenges.alreadyUsed("Run the renewal again.")
            }
        } else {
            try await store.saveRenewal(step.renewal, audit: step.audit)
        }
        commitWatch?.didCommit("save")
    }

    /// The next version of `renewal` (changed by the caller) with its audit entry, to store on its own (`save`) or
    /// with the issuance or revocation it records.
    static func step(_ renewal: inout RenewalRecord, details: String, at now: Timestamp) -> RenewalStepWrite {
        renewal.version += 1
        renewal.updatedAt = now
        return RenewalStepWrite(renewal: renewal, audit: AuditEvent(
            action: .renewalStep, actor: "card:\(renewal.cardSerial)", subject: "user:\(renewal.userID)",
            details: "renewal=\(renewal.id) \(details)", time: now
        ))
    }

    /// The renewal as the agent sees it. The card (known to `start`, which hands out the token) adds its
    /// management-key algorithm, which the agent needs for the card's administration; the other steps need not
    /// read the card again for it. An item issued and not yet confirmed carries its new certificate, for the agent to
    /// write (or find written) when it resumes: taken from `issued` or `certificates` (what the caller has made or
    /// read already), else read from the store.
    func view(
        _ renewal: RenewalRecord, state: RenewalState, token: String?, card: CardRecord? = nil, pukRotationPending: Bool? = nil,
        certificates: [CertificateRecord] = [], issued: (serial: SerialNumber, der: [UInt8])? = nil, administration: RenewalAPI.Administration? = nil
    ) async throws -> RenewalView {
        let algorithm = try card.map { try CardAdministration.managementKey(of: $0, masterKey: masterKey).algorithm.rawValue }
        var items: [RenewalView.Item] = []
        for item in state.items {
            var der: [UInt8]?
            if item.step != .done, let serial = item.newSerial {
                if let issued, issued.serial == serial {
                    der = issued.der
                } else if let known = certificates.first(where: { $0.serial == serial }) {
                    der = known.der
                } else {
                    der = try await store.certificate(serial: serial)?.der
                }
            }
            items.append(RenewalView.Item(profile: item.profile, step: item.step, newCertificate: der.map { Data($0) }))
        }
        return RenewalView(
            id: renewal.id, token: token, done: state.isDone, managementKeyAlgorithm: algorithm, items: items,
            pukRotationPending: pukRotationPending ?? card?.pukRotationPending, administration: administration,
            takesNextWithConfirmation: token != nil ? true : nil
        )
    }

}
