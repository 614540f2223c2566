public import CardDeskAPI
public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
import Crypto
import Foundation
import Smartcard

/// Self-service unlock, and confirming the contact addresses it sends codes to.
///
/// 1. `options`: the card in the reader names its holder; the holder's confirmed addresses are offered, masked.
/// 2. `requestCode`: a 6-digit code goes to the chosen address through the outbox (at most 3 an hour per card).
/// 3. `verify`: the code is checked (15 minutes, single use, 5 wrong entries void it; a keyed hash, compared in
///    constant time); the answer is a short-lived token for this one card.
/// 4. `releasePUK`: with that token, the server releases the card's PUK (sealed until now) for this one reset, and
///    names the new PUK the card gets right after it (as PIV requires, the reset is RESET RETRY COUNTER with the PUK).
/// 5. `complete`: the agent reports the card reset and its PUK changed; the new PUK becomes the stored one. The new
///    passcode is set on the card and never reaches the server. A PUK released but not rotated (the agent stopped
///    in between) shows on the card's record and is rotated at the card's next contact (`rotatePUK`).
///
/// Not for cancelled cards or expired certificates, nor for cards blocked for good: those go to the RA.
/// Every attempt, refused or not, is audited.
public struct UnlockService: Sendable {
    let store: any UnlockStore & RenewalStore & CardRegistry
    let masterKey: MasterKey
    let clock: any WallClock
    public let allowedEmailDomains: [String]
    let codeKey: SymmetricKey
    /// The key of the card challenges' MACs (`CardChallenges`).
    let challengeKey: KeyedMAC

    /// How long the token from a right code may be used to reset the card.
    public static let tokenLifetime: Int64 = 10 * 60

    public init(store: any UnlockStore & RenewalStore & CardRegistry, masterKey: MasterKey, clock: any WallClock, allowedEmailDomains: [String]) {
        self.store = store
        self.masterKey = masterKey
        self.clock = clock
        self.allowedEmailDomains = allowedEmailDomains
        self.codeKey = masterKey.derivedKey(label: "one-time-codes")
        self.challengeKey = KeyedMAC(key: masterKey.derivedKey(label: CardChallenges.keyLabel))
    }

    // MARK: Unlock

    public func options(cardSerial: String) async throws -> UnlockAPI.Options {
        let cardSerial = try Identifiers.cardSerial(cardSerial)
        let (_, contacts) = try await eligible(cardSerial, step: "options")
        return .init(cardSerial: cardSerial, contacts: contacts.usable.map { .init(channel: $0.0, masked: ContactChannel.mask($0.1, channel: $0.0)) })
    }

    public func requestCode(cardSerial: String, channel: ContactChannel) async throws -> UnlockAPI.CodeSent {
        let cardSerial = try Identifiers.cardSerial(cardSerial)
        let (card, contacts) = try await eligible(cardSerial, step: "code")
        guard let address = contacts.address(for: channel) else {
            try await refuse(cardSerial, "code", CardDeskError(.noContactDetails, "No confirmed \(channel.spoken) address is registered for you. Choose another, or go to your Registration Authority."))
        }
        let code = Self.newCode()
        let sent = try await send(
            code: code, purpose: .unlock, userID: card.userID, cardSerial: card.serial, channel: channel, address: address,
            subject: "Your smartcard unlock code",
            body: "Your code to unlock your smartcard is \(code). It works once, for 15 minutes. Do not share it. If you did not ask for it, call your IT service desk.",
            actor: "card:\(card.serial)"
        )
        return .init(unlockID: sent.id, channel: channel, sentTo: ContactChannel.mask(address, channel: channel), expiresInSeconds: Int(OneTimeCodeRecord.lifetimeSeconds))
    }

    public func verify(unlockID: String, code: String) async throws -> UnlockAPI.Verified {
        let token = CardChallenges.randomToken()
        _ = try await check(id: unlockID, code: code, purpose: .unlock, tokenHash: CardChallenges.hash(token), tokenExpiresAt: clock.now().adding(seconds: Self.tokenLifetime))
        return .init(token: token, expiresInSeconds: Int(Self.tokenLifetime))
    }

    /// Releases the card's PUK for this unlock, with the PUK the card must get next.
    public func releasePUK(unlockID: String, token: String) async throws -> UnlockAPI.PUKRelease {
        let record = try await authorised(unlockID, token: token)
        guard let serial = record.cardSerial, let card = try await store.card(serial: serial) else {
            throw CardDeskError(.unknownCard, "The card of this unlock is not known.")
        }
        guard card.status == .active else { throw CardDeskError(.cardCancelled, Self.cancelledMessage) }
        return try await release(card, actor: "card:\(serial)", details: "unlock=\(record.id) PUK released for the reset")
    }

    /// The agent reports the passcode reset on the card and the card's PUK changed to the new one.
    public func complete(unlockID: String, token: String) async throws {
        let record = try await authorised(unlockID, token: token)
        guard try await store.completeCode(id: record.id, at: clock.now(), audit: AuditEvent(
            action: .unlock, actor: "card:\(record.cardSerial ?? "")", subject: "user:\(record.userID)", details: "unlock=\(record.id) passcode reset on the card", time: clock.now()
        )) else {
            throw CardDeskError(.codeAlreadyUsed, "This unlock is finished. Start again to unlock the card again.")
        }
        if let serial = record.cardSerial {
            _ = try await store.completePUKRotation(serial: serial, audit: AuditEvent(
                action: .unlock, actor: "card:\(serial)", subject: "card:\(serial)", details: "unlock=\(record.id) PUK rotated on the card", time: clock.now()
            ))
        }
    }

    // MARK: A PUK released but not rotated

    /// A fresh challenge for a card whose released PUK is to be rotated (two minutes, single use).
    public func pukChallenge() async throws -> String {
        CardChallenges.issue(purpose: "puk", key: challengeKey, clock: clock)
    }

    /// At the card's next contact after an unlock that stopped before its PUK was changed: the card proves itself
    /// (a signature by either key pair, passcode verified), and gets its current and new PUK once more, with a token
    /// to report the change.
    public func rotatePUK(cardSerial: String, challenge: String, signature: [UInt8]) async throws -> UnlockAPI.PUKRelease {
        let cardSerial = try Identifiers.cardSerial(cardSerial)
        let (card, _, _, _) = try await CardChallenges.signer(
            of: signature, over: PUKRotationMessage.make(challenge: challenge, cardSerial: cardSerial), challenge: challenge, purpose: "puk",
            cardSerial: cardSerial, retry: "Try again.", store: store, key: challengeKey, now: clock.now(), anyKeyPair: true
        )
        guard card.pukRotationPending else {
            throw CardDeskError(.invalidInput, "This card's PUK needs no change.")
        }
        return try await release(card, actor: "card:\(card.serial)", details: "PUK released again to rotate it", reportedAs: "puk-rotated")
    }

    /// The card reports its PUK changed after `rotatePUK`.
    public func completePUKRotation(cardSerial: String, token: String) async throws {
        try await rotated(
            cardSerial, token: token, reportedAs: "puk-rotated", actor: nil, details: "PUK rotated on the card at its next contact",
            refusal: "This PUK change was not started, or too much time passed. Try again."
        )
    }

    // MARK: Unlock at the RA's desk

    /// An RA unlocks the card in their second reader (the console has checked they may): the card's PUK and the PUK it
    /// gets next, with a token to report the reset. The holder types the new passcode at the RA's workstation.
    func releaseForRA(_ card: CardRecord, actor: String, desk: String) async throws -> UnlockAPI.PUKRelease {
        guard card.status == .active else { throw CardDeskError(.cardCancelled, Self.cancelledMessage) }
        return try await release(card, actor: actor, details: "PUK released to \(desk) to unlock the card at the RA desk", reportedAs: "ra-unlock")
    }

    /// The agent reports the card reset at the RA's desk and its PUK changed.
    func completeForRA(cardSerial: String, token: String, actor: String, desk: String) async throws {
        try await rotated(
            cardSerial, token: token, reportedAs: "ra-unlock", actor: actor, details: "passcode reset and PUK rotated at the RA desk by \(desk)",
            refusal: "This unlock was not started at this desk, or too much time passed. Start it again."
        )
    }

    /// The card's PUKs released (see `release`) with a token, valid `tokenLifetime`, with which the agent reports the
    /// change through `rotated` (`reportedAs` names the report, and the card).
    private func release(_ card: CardRecord, actor: String, details: String, reportedAs report: String) async throws -> UnlockAPI.PUKRelease {
        var release = try await release(card, actor: actor, details: details)
        let token = CardChallenges.randomToken()
        try await store.addChallenge(CardChallenges.hash(token), purpose: "\(report):\(card.serial)", expiresAt: clock.now().adding(seconds: Self.tokenLifetime))
        release.token = token
        return release
    }

    /// The agent reports the PUK released with `token` changed on the card: the new PUK becomes the stored one.
    /// `actor` nil: the card itself.
    private func rotated(_ cardSerial: String, token: String, reportedAs report: String, actor: String?, details: String, refusal: String) async throws {
        let cardSerial = try Identifiers.cardSerial(cardSerial)
        guard try await store.consumeChallenge(CardChallenges.hash(try Identifiers.token(token)), purpose: "\(report):\(cardSerial)", now: clock.now()) else {
            throw CardDeskError(.authenticationFailed, refusal)
        }
        _ = try await store.completePUKRotation(serial: cardSerial, audit: AuditEvent(
            action: .unlock, actor: actor ?? "card:\(cardSerial)", subject: "card:\(cardSerial)", details: details, time: clock.now()
        ))
    }

    private func release(_ card: CardRecord, actor: String, details: String) async throws -> UnlockAPI.PUKRelease {
        let now = clock.now()
        let stored = try await store.releasePUK(
            serial: card.serial, nextSealed: try CardAdministration.sealPUK(CardAdministration.newPUK(), serial: card.serial, masterKey: masterKey), at: now,
            audit: AuditEvent(action: .unlock, actor: actor, subject: "card:\(card.serial)", details: details, time: now)
        )
        guard let nextSealed = stored.pukNextSealed else { throw CardDeskError(.internalFailure, "The new PUK was not stored.") }
        let puk = try CardAdministration.openPUK(stored.pukSealed, serial: card.serial, masterKey: masterKey)
        let next = try CardAdministration.openPUK(nextSealed, serial: card.serial, masterKey: masterKey)
        return UnlockAPI.PUKRelease(puk: puk, nextPUK: next, token: nil)
    }

    // MARK: Contact addresses

    /// A fresh challenge for the card to sign when the holder changes an unlock address (two minutes, single use).
    public func contactChallenge() async throws -> String {
        CardChallenges.issue(purpose: "contacts", key: challengeKey, clock: clock)
    }

    /// Starts registering (or changing) an address: a code goes to it; the address counts once the code comes back.
    /// The holder's card must consent: a fresh signature, made after the passcode was checked on the card, over
    /// `ContactChangeMessage` for exactly this address (a session alone, or a program on the workstation, cannot).
    public func registerContact(
        userID: UserID, cardSerial: String, channel: ContactChannel, address text: String, challenge: String, signature: [UInt8]
    ) async throws -> UnlockAPI.CodeSent {
        let now = clock.now()
        let address: String
        let notConfirmed = CardDeskError(.authenticationFailed, "Your smartcard did not confirm this change. Enter your passcode to confirm it.")
        do {
            let consent: (card: CardRecord, signer: CertificateRecord)
            do {
                let cardSerial = try Identifiers.cardSerial(cardSerial)
                let proof = try await CardChallenges.signer(
                    of: signature, over: ContactChangeMessage.make(challenge: challenge, cardSerial: cardSerial, channel: channel, address: text),
                    challenge: challenge, purpose: "contacts", cardSerial: cardSerial, retry: "", store: store, key: challengeKey, now: now
                )
                consent = (proof.card, proof.signer)
            } catch let error as CardDeskError where error.code == .authenticationFailed {
                throw notConfirmed
            }
            guard consent.card.userID == userID, consent.signer.notAfter > now else { throw notConfirmed }
            address = channel == .email ? try ContactAddress.email(text, allowedDomains: allowedEmailDomains) : try ContactAddress.mobile(text)
        } catch let error as CardDeskError {
            _ = try? await store.appendAudit(AuditEvent(
                action: .contactsUpdate, actor: "user:\(userID)", subject: "user:\(userID)", outcome: .failure, details: "\(channel.rawValue) refused: \(error.code.name)", time: now
            ))
            throw error
        }
        let code = Self.newCode()
        let sent = try await send(
            code: code, purpose: .confirmContact, userID: userID, cardSerial: nil, channel: channel, address: address,
            subject: "Confirm your address for smartcard unlock",
            body: "Your code to confirm this \(channel.spoken) address for smartcard unlock is \(code). It works once, for 15 minutes.",
            actor: "user:\(userID)"
        )
        return .init(unlockID: sent.id, channel: channel, sentTo: ContactChannel.mask(address, channel: channel), expiresInSeconds: Int(OneTimeCodeRecord.lifetimeSeconds))
    }

    public func confirmContact(userID: UserID, confirmationID: String, code: String) async throws -> ContactDetails {
        guard (try? Identifiers.requestID(confirmationID)) != nil, let pending = try await store.code(id: confirmationID), pending.purpose == .confirmContact, pending.userID == userID else {
            throw CardDeskError(.wrongCode, "This code request is not known. Ask for a new code.")
        }
        let record = try await check(id: confirmationID, code: code, purpose: .confirmContact, tokenHash: nil, tokenExpiresAt: nil)
        var contacts = try await store.contacts(userID: userID) ?? ContactDetails(userID: userID)
        let previous = contacts.address(for: record.channel)
        switch record.channel {
        case .email:
            contacts.email = record.recipient
            contacts.emailConfirmed = true
        case .sms:
            contacts.mobile = record.recipient
            contacts.mobileConfirmed = true
        }
        if let previous, previous != record.recipient {
            try await tellOldAddress(previous, channel: record.channel, userID: userID, newAddress: record.recipient)
        }
        try await store.saveContacts(contacts, audit: AuditEvent(
            action: .contactsUpdate, actor: "user:\(userID)", subject: "user:\(userID)", details: "\(record.channel.rawValue) confirmed", time: clock.now()
        ))
        return contacts
    }

    public func contacts(userID: UserID) async throws -> ContactDetails? {
        try await store.contacts(userID: userID)
    }

    /// An operator (or RA) sets addresses directly: they count as confirmed.
    public func setContacts(userID: UserID, email: String?, mobile: String?, actor: String) async throws -> ContactDetails {
        guard try await store.user(id: userID) != nil else { throw CardDeskError(.unknownUser, "There is no user \(userID).") }
        var contacts = try await store.contacts(userID: userID) ?? ContactDetails(userID: userID)
        if let email {
            contacts.email = email.isEmpty ? nil : try ContactAddress.email(email, allowedDomains: allowedEmailDomains)
            contacts.emailConfirmed = !email.isEmpty
        }
        if let mobile {
            contacts.mobile = mobile.isEmpty ? nil : try ContactAddress.mobile(mobile)
            contacts.mobileConfirmed = !mobile.isEmpty
        }
        try await store.saveContacts(contacts, audit: AuditEvent(
            action: .contactsUpdate, actor: actor, subject: "user:\(userID)",
            details: [email.map { $0.isEmpty ? "email removed" : "email set" }, mobile.map { $0.isEmpty ? "mobile removed" : "mobile set" }].compactMap { $0 }.joined(separator: ", "),
            time: clock.now()
        ))
        return contacts
    }

    /// The address being replaced is told, so a change the holder did not make does not go unnoticed.
    private func tellOldAddress(_ old: String, channel: ContactChannel, userID: UserID, newAddress: String) async throws {
        let now = clock.now()
        let body = "The \(channel.spoken) address for unlocking your smartcard was changed to \(ContactChannel.mask(newAddress, channel: channel)). Codes will no longer come here. If you did not make this change, call your IT service desk or your Registration Authority now."
        try await store.addMessage(try sealedMessage(channel: channel, to: old, subject: "Your smartcard unlock address was changed", body: body, now: now), audit: AuditEvent(
            action: .contactsUpdate, actor: "user:\(userID)", subject: "user:\(userID)",
            details: "\(channel.rawValue) change told to the old address \(ContactChannel.mask(old, channel: channel))", time: now
        ))
    }

    /// A message for the outbox, its body sealed under the master key (the outbox worker opens it to send it).
    private func sealedMessage(channel: ContactChannel, to recipient: String, subject: String, body: String, now: Timestamp) throws -> OutboxMessage {
        let id = SecureRandom.uuid()
        return OutboxMessage(
            id: id, channel: channel, recipient: recipient, subject: subject,
            bodySealed: try masterKey.seal(Array(body.utf8), label: "outbox \(id)"), createdAt: now, nextAttemptAt: now
        )
    }

    // MARK: Rules

    static let cancelledMessage = "This card has been cancelled, so it cannot be unlocked online. Go to your Registration Authority."
    static let expiredMessage = "Your smartcard's certificates have expired, so it cannot be unlocked online. Go to your Registration Authority."

    /// The card may be unlocked online: known, not cancelled, certificates in force, and a confirmed address.
    private func eligible(_ cardSerial: String, step: String) async throws -> (CardRecord, ContactDetails) {
        guard let card = try await store.card(serial: cardSerial) else {
            try await refuse(cardSerial, step, CardDeskError(.unknownCard, "This card is not known to CardDesk. Go to your Registration Authority."))
        }
        guard card.status == .active else {
            try await refuse(cardSerial, step, CardDeskError(.cardCancelled, Self.cancelledMessage))
        }
        let current = try await CardInForce.load(cardSerial, store: store).current
        let now = clock.now()
        guard !current.isEmpty, current.values.allSatisfy({ $0.notAfter > now }) else {
            try await refuse(cardSerial, step, CardDeskError(.certificatesExpired, Self.expiredMessage))
        }
        guard let contacts = try await store.contacts(userID: card.userID), !contacts.usable.isEmpty else {
            try await refuse(cardSerial, step, CardDeskError(
                .noContactDetails,
                "No email address or mobile number is registered for your card, so a code cannot be sent. Go to your Registration Authority; next time, register one on your CardDesk home page."
            ))
        }
        return (card, contacts)
    }

    private func refuse(_ cardSerial: String, _ step: String, _ error: CardDeskError) async throws -> Never {
        _ = try? await store.appendAudit(AuditEvent(
            action: .unlock, actor: "card:\(cardSerial)", subject: "card:\(cardSerial)", outcome: .failure, details: "\(step) refused: \(error.code.name)", time: clock.now()
        ))
        throw error
    }

    private func send(
        code: String, purpose: OneTimeCodeRecord.Purpose, userID: UserID, cardSerial: String?, channel: ContactChannel, address: String,
        subject: String, body: String, actor: String
    ) async throws -> OneTimeCodeRecord {
        let now = clock.now()
        let id = SecureRandom.uuid()
        let record = OneTimeCodeRecord(
            id: id, purpose: purpose, userID: userID, cardSerial: cardSerial, channel: channel, recipient: address,
            codeHash: hash(code, id: id), createdAt: now, expiresAt: now.adding(seconds: OneTimeCodeRecord.lifetimeSeconds)
        )
        let message = try sealedMessage(channel: channel, to: address, subject: subject, body: body, now: now)
        do {
            try await store.addCode(record, message: message, audit: AuditEvent(
                action: .codeSend, actor: actor, subject: "user:\(userID)",
                details: "\(purpose.rawValue)=\(id) by \(channel.rawValue) to \(ContactChannel.mask(address, channel: channel))", time: now
            ), limit: OneTimeCodeRecord.maximumPerHour)
        } catch let limit as CodeLimitReached {
            let error = CardDeskError(
                .tooManyCodes,
                "You have asked for \(OneTimeCodeRecord.maximumPerHour) codes in the last hour, the most allowed. Try again after \(limit.retryAfter.timeOfDayDescription) UTC, or go to your Registration Authority.",
                retryAfterSeconds: Int(max(1, (limit.retryAfter.millisecondsSince1970 - now.millisecondsSince1970 + 999) / 1000))
            )
            _ = try? await store.appendAudit(AuditEvent(
                action: .codeSend, actor: actor, subject: "user:\(userID)", outcome: .failure, details: "\(purpose.rawValue) refused: tooManyCodes", time: now
            ))
            throw error
        }
        return record
    }

    /// Checks a code and marks it used. Each check first takes one of the code's attempts atomically in the store, so
    /// any number of guesses at once are still at most `maximumWrongEntries` checks; the fifth wrong one voids it.
    private func check(
        id: String, code: String, purpose: OneTimeCodeRecord.Purpose, tokenHash: String?, tokenExpiresAt: Timestamp?
    ) async throws -> OneTimeCodeRecord {
        let now = clock.now()
        let maximum = OneTimeCodeRecord.maximumWrongEntries
        guard (try? Identifiers.requestID(id)) != nil, code.utf8.count <= 32 else {
            throw CardDeskError(.wrongCode, "This code request is not known. Ask for a new code.")
        }
        func refuse(_ record: OneTimeCodeRecord?, _ error: CardDeskError) async throws -> Never {
            if let record {
                _ = try? await store.appendAudit(AuditEvent(
                    action: .codeCheck, actor: record.cardSerial.map { "card:\($0)" } ?? "user:\(record.userID)", subject: "user:\(record.userID)",
                    outcome: .failure, details: "\(purpose.rawValue)=\(id) \(error.code.name)", time: now
                ))
            }
            throw error
        }
        let voided = CardDeskError(.codeVoided, "This code no longer works: it was entered wrongly \(maximum) times. Ask for a new code.")
        guard let attempt = try await store.takeCodeAttempt(id: id, purpose: purpose, now: now, maximum: maximum) else {
            // No attempt left to take: say why.
            guard let record = try await store.code(id: id), record.purpose == purpose else {
                throw CardDeskError(.wrongCode, "This code request is not known. Ask for a new code.")
            }
            if record.usedAt != nil { try await refuse(record, CardDeskError(.codeAlreadyUsed, "This code has already been used. Ask for a new code.")) }
            if record.voidedAt != nil || record.failedAttempts >= maximum { try await refuse(record, voided) }
            try await refuse(record, CardDeskError(.codeExpired, "This code has expired: codes work for 15 minutes. Ask for a new code."))
        }
        let actor = attempt.cardSerial.map { "card:\($0)" } ?? "user:\(attempt.userID)"
        let given = code.trimmingCharacters(in: .whitespaces)
        guard ConstantTime.equal(hash(given, id: id), attempt.codeHash) else {
            let number = attempt.failedAttempts
            let left = maximum - number
            try await store.recordWrongCode(id: id, void: left <= 0, at: now, audit: AuditEvent(
                action: .codeCheck, actor: actor, subject: "user:\(attempt.userID)", outcome: .failure,
                details: "\(purpose.rawValue)=\(id) wrong code (\(number) of \(maximum))" + (left <= 0 ? ", voided" : ""), time: now
            ))
            if left <= 0 {
                throw CardDeskError(.codeVoided, "That code is not right, and it has now been entered wrongly \(maximum) times, so it no longer works. Ask for a new code.")
            }
            throw CardDeskError(.wrongCode, "That code is not right. You can try \(left) more time\(left == 1 ? "" : "s").")
        }
        guard try await store.useCode(id: id, at: now, tokenHash: tokenHash, tokenExpiresAt: tokenExpiresAt, audit: AuditEvent(
            action: .codeCheck, actor: actor, subject: "user:\(attempt.userID)", details: "\(purpose.rawValue)=\(id) code accepted", time: now
        )) else {
            try await refuse(attempt, voided)
        }
        var record = attempt
        record.usedAt = now
        return record
    }

    private func authorised(_ unlockID: String, token: String) async throws -> OneTimeCodeRecord {
        guard (try? Identifiers.requestID(unlockID)) != nil, let record = try await store.code(id: unlockID), record.purpose == .unlock, let tokenHash = record.tokenHash,
              ConstantTime.equal(CardChallenges.hash(token), tokenHash)
        else {
            throw CardDeskError(.authenticationFailed, "This unlock was not confirmed with a code. Start again.")
        }
        guard record.completedAt == nil else { throw CardDeskError(.codeAlreadyUsed, "This unlock is finished. Start again to unlock the card again.") }
        guard let expiry = record.tokenExpiresAt, expiry > clock.now() else {
            throw CardDeskError(.codeExpired, "Too much time passed since the code was entered. Start again.")
        }
        return record
    }

    private func hash(_ code: String, id: String) -> String {
        Hex.string(HMAC<SHA256>.authenticationCode(for: Array("\(id):\(code)".utf8), using: codeKey), lowercase: true)
    }

    static func newCode() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%06d", Int.random(in: 0..<1_000_000, using: &generator))
    }
}
