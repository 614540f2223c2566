public import CardDeskAPI
import CardDeskCore
public import Foundation
public import Smartcard

/// The workstation agent: watches a reader; when a card arrives the holder signs in (passcode at the terminal or in
/// the page, through the localhost bridge), picks a role, and sees the expiry notification when renewal is open;
/// when the card leaves, the session ends at once. The passcode is checked by the card and never leaves this computer.
///
/// What the agent knows is one value, `AgentState`, which takes events and returns effects; this actor feeds it the
/// events (reader, terminal, check-in, bridge requests, answers from the card and the server) and carries out the
/// effects. It holds only what a value cannot: the card's session, the server client, and the running renewal's task.
public actor WorkstationAgent {
    let reader: any CardReader
    /// The RA desk's second reader, for the card holder's card (nil: the agent watches one reader).
    let subjectReader: (any CardReader)?
    let server: ServerClient
    let output: @Sendable (String) -> Void
    let opener: @Sendable (URL) -> Bool
    let hideInput: @Sendable (Bool) -> Void
    /// The localhost bridge's port, announced to the server at check-in.
    public private(set) var bridgePort: Int

    private(set) var state: AgentState
    /// The session with the card in the reader, for the insertion `state.card` names.
    private var cardSession: (insertion: CardInsertion, session: any SmartcardSession)?
    /// The renewal running for the card in the reader (cancelled when the card is taken out).
    private var renewalTask: Task<Void, Never>?
    /// The session with the card in the second reader, and the RA's renewal of it.
    private var subjectSession: (insertion: CardInsertion, session: any SmartcardSession)?
    private var subjectRenewalTask: Task<Void, Never>?
    /// The sign-in challenge of the last check-in's answer and when it came: the next sign-in signs it instead of
    /// asking for one (one request fewer), while it is fresh; used once.
    private var heldChallenge: (challenge: String, received: ContinuousClock.Instant)?
    /// How long a held challenge is used: well inside the two minutes the server gives it.
    static let heldChallengeLifetime: Duration = .seconds(60)

    public static let version = "0.5.0"
    /// How often the agent checks in (presence, keep-alive, ended elsewhere).
    static let heartbeatInterval: Duration = .seconds(5)

    /// - Parameters:
    ///   - output: where the agent writes (standard output, flushed per line).
    ///   - opener: opens a URL in the browser; false when there is no browser to open.
    ///   - hideInput: called with true when the agent starts waiting for a passcode typed at the terminal (which must
    ///     then not echo it), and with false when it stops.
    public init(
        reader: any CardReader, subjectReader: (any CardReader)? = nil, server: ServerClient, bridgePort: Int,
        output: @escaping @Sendable (String) -> Void, opener: @escaping @Sendable (URL) -> Bool, hideInput: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        self.reader = reader
        self.subjectReader = subjectReader
        self.server = server
        self.bridgePort = bridgePort
        self.output = output
        self.opener = opener
        self.hideInput = hideInput
        self.state = AgentState(renewalURL: Self.renewalURL(server: server).absoluteString)
    }

    /// The page the expiry notification points to.
    public nonisolated var renewalURL: URL { Self.renewalURL(server: server) }

    static func renewalURL(server: ServerClient) -> URL {
        let base = server.baseURL.absoluteString.hasSuffix("/") ? server.baseURL : server.baseURL.appendingPathComponent("")
        return URL(string: "?operation=selfRenewSmartcard", relativeTo: base)!.absoluteURL
    }

    /// The port the bridge really listens on (it may have been asked for port 0).
    public func setBridgePort(_ port: Int) {
        bridgePort = port
    }

    // MARK: Inputs

    /// Runs until the task is cancelled: reader events, terminal lines and the check-in with the server.
    public func run(lines: AsyncStream<String>) async {
        output("CardDesk agent watching \(reader.name). Insert your smartcard.")
        if let subjectReader { output("Second reader (the card holder's card, at the RA desk): \(subjectReader.name).") }
        await withTaskGroup(of: Void.self) { group in
            if let subjectReader {
                group.addTask {
                    for await event in subjectReader.events() {
                        switch event {
                        case .inserted(let serial, let card): await self.subjectInserted(serial: serial, card: card)
                        case .blank(let card): await self.subjectInserted(serial: "", card: card)
                        case .removed: await self.subjectRemoved()
                        }
                    }
                }
            }
            group.addTask {
                for await event in self.reader.events() {
                    switch event {
                    case .inserted(let serial, let card): await self.inserted(serial: serial, card: card)
                    case .blank: await self.blankInserted()
                    case .removed: await self.removed()
                    }
                }
            }
            group.addTask {
                for await line in lines { await self.line(line) }
                // Standard input closed (the agent runs unattended): keep watching the reader.
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            }
            group.addTask {
                while !Task.isCancelled {
                    await self.heartbeat()
                    try? await Task.sleep(for: Self.heartbeatInterval)
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    func inserted(serial: String, card session: any SmartcardSession) async {
        let effects = state.inserted(serial: serial)
        if let card = state.card { cardSession = (card, session) }
        await perform(effects)
    }

    func blankInserted() async {
        cardSession = nil
        await perform(state.blankInserted())
    }

    func removed() async {
        cardSession = nil
        await perform(state.removed())
    }

    /// A line typed at the terminal: the answer to whatever the agent last asked.
    func line(_ text: String) async {
        await perform(state.line(text))
    }

    /// Every few seconds, one small request: tell the server an agent runs here (so a page that cannot reach the
    /// bridge can tell "not running" from "blocked"), keep the session open while the card is in, and notice a
    /// session ended elsewhere (logged out from the page).
    func heartbeat() async {
        let current = state.checkInToken
        guard let answer = try? await server.checkIn(bridgePort: bridgePort, token: current) else { return }
        if let challenge = answer.challenge { heldChallenge = (challenge, .now) }
        guard let current, let status = answer.session, !status.active else { return }
        await perform(state.sessionEnded(token: current, reason: status.reason))
    }

    // MARK: Effects

    /// Carries out what the state asked for, in order.
    private func perform(_ effects: [AgentState.Effect]) async {
        for effect in effects {
            switch effect {
            case .say(let text):
                output(text)
            case .hideInput(let hidden):
                hideInput(hidden)
            case .readPasscodeState(let insertion):
                guard let session = currentSession(for: insertion) else { continue }
                let result: Result<PINState, CardDeskError>
                do { result = .success(try await session.pinState()) } catch { result = .failure(Self.cardDeskError(error)) }
                await perform(state.passcodeState(result, for: insertion))
            case .signIn(let passcode, let insertion):
                try? await signIn(passcode: passcode, claimed: insertion, fromTerminal: true)
            case .chooseRole(let token, let number):
                try? await chooseRole(number: number, token: token, fromTerminal: true)
            case .logout(let token, let reason):
                try? await server.logout(token: token, reason: reason)
            case .cancelRenewal:
                renewalTask?.cancel()
            case .cancelSubjectRenewal:
                subjectRenewalTask?.cancel()
            case .openRenewalPage:
                if opener(renewalURLWithHandover()) {
                    output("Opening \(renewalURL.absoluteString) in your browser.")
                } else {
                    output("To renew later, copy this link into a supported browser: \(renewalURL.absoluteString)")
                }
            case .notify(let title, let body):
                DesktopNotification.post(title: title, body: body)
            case .rotatePUK(let insertion):
                guard let session = currentSession(for: insertion) else { continue }
                // The card's PUK was released for an unlock that stopped before changing it: change it now.
                let server = server, say = output
                Task {
                    do {
                        try await PUKRotation.ifPending(server: server, card: session, serial: insertion.serial)
                        say("Your card's unlock key was renewed.")
                    } catch {
                        say("Your card's unlock key could not be renewed now (\(Self.describe(error))); it will be next time.")
                    }
                }
            }
        }
    }

    /// The card's session for `insertion`, if that card is still in the reader.
    private func currentSession(for insertion: CardInsertion) -> (any SmartcardSession)? {
        guard let cardSession, cardSession.insertion == insertion else { return nil }
        return cardSession.session
    }

    private func session(for insertion: CardInsertion) throws(CardDeskError) -> any SmartcardSession {
        guard let session = currentSession(for: insertion) else {
            throw CardDeskError(.cardRemoved, "The smartcard was removed. Insert it and try again.")
        }
        return session
    }

    static func cardDeskError(_ error: any Error) -> CardDeskError {
        (error as? CardDeskError) ?? CardDeskError(.internalFailure, "\(error)")
    }

    // MARK: Signing in (terminal and bridge)

    /// Checks the passcode on the card, signs the server's challenge, opens the session (a passcode typed in the page).
    func signIn(passcode: String, fromTerminal: Bool) async throws {
        let insertion = try state.beginSignIn()
        try await signIn(passcode: passcode, claimed: insertion, fromTerminal: fromTerminal)
    }

    private func signIn(passcode: String, claimed insertion: CardInsertion, fromTerminal: Bool) async throws {
        do {
            let card = try session(for: insertion)
            try await checkPasscode(passcode, on: insertion)
            // A renewal interrupted last time (the card was removed, the agent stopped) is finished first: until then the
            // authentication key may not match its certificate.
            if (try? await server.renewalStatus(cardSerial: insertion.serial))?.renewalInProgress == true {
                output("Finishing the renewal of your certificates that was interrupted...")
                let say = output
                try await RenewalClient(server: server, card: card).renew(passcode: passcode) { profile, stage in
                    say("\(Terminal.label(profile)): \(stage.rawValue)")
                }
                output("Success: certificate renewed for smartcard")
            }
            let challenge = if let held = takeHeldChallenge() { held } else { try await server.loginChallenge() }
            let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: insertion.serial), with: .authentication)
            let session = try await server.login(.init(cardSerial: insertion.serial, challenge: challenge, signature: Data(signature.rawRepresentation)))
            guard let token = session.token else { throw CardDeskError(.internalFailure, "The server opened no session.") }
            let outcome = state.signedIn(session, token: token, for: insertion, fromTerminal: fromTerminal, now: Date())
            await perform(outcome.effects)
            guard outcome.accepted else { throw CardDeskError(.cardRemoved, "The card was removed.") }
        } catch {
            await perform(state.signInFailed(Self.cardDeskError(error), for: insertion, fromTerminal: fromTerminal))
            throw error
        }
    }

    /// The last check-in's challenge, if it is fresh: taken (a challenge signs in once).
    private func takeHeldChallenge() -> String? {
        defer { heldChallenge = nil }
        guard let held = heldChallenge, ContinuousClock.now - held.received < Self.heldChallengeLifetime else { return nil }
        return held.challenge
    }

    func chooseRole(number: Int, fromTerminal: Bool) async throws {
        let token = try state.beginRoleChoice()
        try await chooseRole(number: number, token: token, fromTerminal: fromTerminal)
    }

    private func chooseRole(number: Int, token: String, fromTerminal: Bool) async throws {
        do {
            let session = try await server.chooseRole(token: token, number: number)
            let outcome = state.roleChosen(session, token: token, fromTerminal: fromTerminal, now: Date())
            await perform(outcome.effects)
            guard outcome.accepted else { throw CardDeskError(.cardRemoved, "The card was removed.") }
        } catch {
            await perform(state.roleChoiceFailed(Self.cardDeskError(error), fromTerminal: fromTerminal))
            throw error
        }
    }

    /// The passcode checked on the card; the state notes the tries left, and a card that locks moves it to `cardLocked`.
    /// Every place the agent hands the card a passcode (sign-in, renewal, hand-over, contact consent, change) goes here.
    private func checkPasscode(_ passcode: String, on insertion: CardInsertion) async throws {
        try await checkPasscode(on: insertion) { try await $0.verifyPIN(passcode) }
    }

    private func checkPasscode(on insertion: CardInsertion, _ operation: (any SmartcardSession) async throws -> Void) async throws {
        let card = try session(for: insertion)
        do {
            try await operation(card)
            // Accepted: the card restores every try, so there is nothing to read back.
            await perform(state.passcodeChecked(refused: nil, triesLeft: nil, for: insertion))
        } catch let error as CardDeskError {
            let left = (try? await card.pinState())?.pinTriesLeft
            await perform(state.passcodeChecked(refused: error, triesLeft: left, for: insertion))
            throw error
        }
    }

    // MARK: What the bridge asks

    func status() -> BridgeAPI.Status {
        state.status(version: Self.version)
    }

    /// The token a page must present for anything beyond status and sign-in; nil when nobody is signed in.
    func bridgeToken() -> String? {
        state.bridgeToken
    }

    /// A browser joins the agent's session only with a secret the agent gave to the page it opened (or to the page
    /// where the passcode was typed), or with the card's passcode: another program on this computer, which can send
    /// the server's `Origin` too, has neither.
    func handover(_ request: BridgeAPI.HandoverRequest) async throws -> LoginAPI.Handover {
        let signedIn = try state.requireSignedIn()
        if let secret = request.secret, state.consumeHandoverSecret(secret, now: Date()) {
            return try await server.handover(token: signedIn.token)
        }
        guard let passcode = request.passcode, !passcode.isEmpty else {
            throw CardDeskError(
                .passcodeRequired,
                "This page was not opened by the CardDesk agent. Enter your smartcard passcode to continue in this browser."
            )
        }
        try await checkPasscode(passcode, on: signedIn.card)
        return try await server.handover(token: signedIn.token)
    }

    /// The holder consents, with the passcode, to a new unlock address: the card signs exactly that address.
    func contactConsent(_ consent: BridgeAPI.ContactConsent) async throws -> BridgeAPI.ContactSignature {
        let insertion = try state.requireSignedIn().card
        try await checkPasscode(consent.passcode, on: insertion)
        let message = ContactChangeMessage.make(challenge: consent.challenge, cardSerial: insertion.serial, channel: consent.channel, address: consent.address)
        let signature = try await session(for: insertion).sign(message, with: .authentication)
        output("Contact address change confirmed with your passcode.")
        return .init(signature: Data(signature.rawRepresentation))
    }

    /// A new single-use hand-over secret (only its hash is kept).
    func newHandoverSecret() -> String {
        state.newHandoverSecret(now: Date())
    }

    /// The renewal page with a fresh hand-over secret in the fragment: the fragment never reaches a server, and the
    /// page removes it from the address bar as soon as it has read it.
    func renewalURLWithHandover() -> URL {
        URL(string: renewalURL.absoluteString + "#handover=" + newHandoverSecret())!
    }

    // MARK: Renewal from the page

    /// The renewal's progress as the page polls it.
    var renewalProgress: BridgeAPI.RenewalProgress { state.renewal.snapshot }

    /// Checks the passcode, then renews in the background; the page follows `renewalProgress`. The renewal is claimed
    /// before the first suspension, so two requests at once cannot both start one.
    func startRenewal(passcode: String) async throws {
        let insertion = try state.claimRenewal()
        let card: any SmartcardSession
        do {
            card = try session(for: insertion)
            try await checkPasscode(passcode, on: insertion)
        } catch {
            state.renewalRefused()
            throw error
        }
        await perform(try state.renewalStarts(for: insertion))
        let client = RenewalClient(server: server, card: card)
        renewalTask = Task {
            var failure: (any Error)?
            do {
                try await client.renew(passcode: passcode) { profile, stage in await self.renewalProgress(profile, stage) }
            } catch {
                failure = error
            }
            await self.renewalEnded(failure)
        }
    }

    private func renewalProgress(_ profile: CertificateProfileKind, _ stage: RenewalClient.Stage) {
        state.renewalProgress(profile, stage)
    }

    private func renewalEnded(_ error: (any Error)?) async {
        renewalTask = nil
        await perform(state.renewalFinished(error))
    }

    // MARK: Unlock and passcode change (from the page)

    func unlockOptions() async throws -> UnlockAPI.Options {
        let insertion = try state.requireCard()
        let options = try await UnlockClient(server: server, card: try session(for: insertion)).options()
        state.unlockOptionsShown(for: insertion)
        return options
    }

    func requestUnlockCode(channel: ContactChannel) async throws -> UnlockAPI.CodeSent {
        let insertion = try state.claimUnlockCode()
        do {
            let sent = try await UnlockClient(server: server, card: try session(for: insertion)).requestCode(cardSerial: insertion.serial, channel: channel)
            await perform(state.unlockCodeSent(sent, channel: channel, for: insertion))
            return sent
        } catch {
            await perform(state.unlockCodeSent(nil, channel: channel, for: insertion))
            throw error
        }
    }

    func verifyUnlockCode(_ code: String) async throws {
        let (insertion, unlockID) = try state.claimUnlockVerification()
        do {
            let verified = try await UnlockClient(server: server, card: try session(for: insertion)).verify(unlockID: unlockID, code: code)
            state.unlockCodeVerified(token: verified.token, for: insertion)
        } catch {
            state.unlockCodeVerified(token: nil, for: insertion)
            throw error
        }
    }

    func resetPasscode(_ passcode: String, repeated: String) async throws {
        let (insertion, unlockID, token) = try state.claimUnlockReset()
        do {
            try await UnlockClient(server: server, card: try session(for: insertion)).reset(unlockID: unlockID, token: token, passcode: passcode, repeated: repeated)
        } catch {
            await perform(state.unlockResetEnded(unlocked: false, for: insertion))
            throw error
        }
        await perform(state.unlockResetEnded(unlocked: true, for: insertion))
    }

    /// Changes the passcode knowing the current one (signed-in pages only).
    func changePasscode(current: String, new: String, repeated: String) async throws {
        let insertion = try state.requireSignedIn().card
        try Passcode.checkNew(new, repeated: repeated)
        try await checkPasscode(on: insertion) { try await $0.changePIN(current: current, new: new) }
        output("Your passcode has been changed.")
    }

    // MARK: The RA desk's second reader (the card holder's card)

    /// A card arrived in the second reader. One that holds no certificate at all (a factory-fresh card, whose CHUID
    /// may carry a GUID already) counts as blank, as does one without CardDesk's identity (`serial` empty).
    func subjectInserted(serial: String, card session: any SmartcardSession) async {
        var blank = serial.isEmpty
        if !blank {
            do {
                let authentication = try await session.certificate(in: .authentication)
                let signing = try await session.certificate(in: .signing)
                blank = authentication == nil && signing == nil
            } catch {
                // Unreadable for now: taken as the card it says it is; its work then explains what fails.
            }
        }
        let effects = state.subjectInserted(serial: blank ? "" : serial)
        if let subject = state.subject { subjectSession = (subject, session) }
        await perform(effects)
    }

    func subjectRemoved() async {
        subjectSession = nil
        await perform(state.subjectRemoved())
    }

    private func subjectSession(for insertion: CardInsertion) throws(CardDeskError) -> any SmartcardSession {
        guard let subjectSession, subjectSession.insertion == insertion else {
            throw CardDeskError(.cardRemoved, "The card was taken out of the second reader. Put it back and try again.")
        }
        return subjectSession.session
    }

    /// The card in the second reader, for the RA's page (signed in only).
    func subjectCard() async throws -> BridgeAPI.SubjectCard {
        _ = try state.requireSignedIn()
        guard let subjectReader else {
            return .init(cardSerial: nil, reader: nil, triesLeft: nil, locked: false, blocked: false)
        }
        guard let subject = state.subject, let session = try? subjectSession(for: subject) else {
            return .init(cardSerial: nil, reader: subjectReader.name, triesLeft: nil, locked: false, blocked: false)
        }
        if state.subjectBlank {
            return .init(cardSerial: nil, reader: subjectReader.name, triesLeft: nil, locked: false, blocked: false, blank: true)
        }
        let pin = try await session.pinState()
        return .init(cardSerial: subject.serial, reader: subjectReader.name, triesLeft: pin.pinTriesLeft, locked: pin.isLocked, blocked: pin.isBlockedForGood)
    }

    /// The RA issues the blank card in the second reader to `userID`: the server gives a single-use enrolment token
    /// (`POST /api/v1/ra/enrolments`, if this RA may), and the card is enrolled as `carddesk card enrol` does. The
    /// person types the new card's passcode twice; or, with `locked`, the card is issued locked (a random passcode,
    /// then blocked) and its holder sets a passcode by self-service unlock. Answers the new card's serial.
    func issueSubjectCard(userID: String, passcode: String?, repeated: String?, keyAlgorithm: CardKeyAlgorithm = .p256) async throws -> String {
        let (token, insertion) = try state.claimSubject(.issuing)
        do {
            guard let card = try subjectSession(for: insertion) as? PIVCardSession else {
                throw CardDeskError(.unsupportedCard, "This card cannot be issued here: it is not a PIV card.")
            }
            let chosen: String
            if let passcode {
                try Passcode.checkNew(passcode, repeated: repeated ?? "")
                chosen = passcode
            } else {
                chosen = Self.randomPasscode()
            }
            let enrolmentToken = try await server.raEnrolmentToken(sessionToken: token, userID: userID, keyAlgorithm: keyAlgorithm.rawValue)
            let begun = try await EnrolmentClient(server: server, card: card).enrol(token: enrolmentToken, passcode: chosen) { _ in }
            if passcode == nil {
                // Issued locked: nobody knows the passcode; the holder sets one by self-service unlock.
                let wrong = chosen == "90817263" ? "81726354" : "90817263"
                while try await card.pinState().pinTriesLeft > 0 {
                    try? await card.verifyPIN(wrong)
                }
                try await card.reset()
            }
            await becameAnotherCard(
                begun.cardSerial, card: card, for: insertion, saying: "Card \(begun.cardSerial) issued in the second reader."
            )
            return begun.cardSerial
        } catch {
            await perform(state.subjectWorkEnded(for: insertion))
            throw error
        }
    }

    /// The RA clears the card in the second reader so that it can be issued again: the server cancels it and revokes
    /// its certificates (`POST /api/v1/ra/clears`), then the card goes back to its factory state here (no
    /// certificates, factory passcode, PUK and management key). Run again after an interruption, it finishes.
    func clearSubject() async throws {
        let (token, insertion) = try state.claimSubject(.clearing)
        do {
            guard let card = try subjectSession(for: insertion) as? PIVCardSession else {
                throw CardDeskError(.unsupportedCard, "This card cannot be cleared here: it is not a PIV card.")
            }
            let release = try await server.raClear(sessionToken: token, cardSerial: insertion.serial)
            guard let algorithm = ManagementKey.Algorithm(rawValue: release.managementKeyAlgorithm),
                  let key = try? ManagementKey(algorithm: algorithm, bytes: Array(release.managementKey)) else {
                throw CardDeskError(.internalFailure, "The server's answer for clearing this card cannot be used.")
            }
            try await Self.factoryReset(card.client, key: key, puk: release.puk)
            try await card.reset()
            await becameAnotherCard("", card: card, for: insertion, saying: "Card \(insertion.serial) (second reader) is cleared: it is blank, ready to be issued again.")
        } catch {
            await perform(state.subjectWorkEnded(for: insertion))
            throw error
        }
    }

    /// Puts a card back as it left the factory: certificates deleted, passcode and PUK the factory ones, the factory
    /// management key. Each step accepts a card that had it done already.
    static func factoryReset(_ piv: PIVClient, key: ManagementKey, puk: String) async throws {
        try await piv.select()
        do {
            try await piv.authenticate(with: key)
        } catch let error as CardDeskError where error.code == .notAuthorised {
            try await piv.authenticate(with: .factoryDefault)
        }
        for slot in [CardSlot.authentication, .signing] {
            if let tag = PIV.Object.certificate(forKey: slot.keyReference) { try await piv.writeObject(tag, []) }
        }
        do {
            try await piv.unblockPIN(puk: puk, newPIN: PIV.factoryPIN)
            try await piv.changePUK(current: puk, new: PIV.factoryPUK)
        } catch let error as CardDeskError where error.code == .notAuthorised {
            // The PUK is the factory one already (an earlier run got this far).
            try await piv.unblockPIN(puk: PIV.factoryPUK, newPIN: PIV.factoryPIN)
        }
        try await piv.setManagementKey(.factoryDefault)
    }

    /// Eight random digits that `Passcode.checkNew` accepts.
    static func randomPasscode() -> String {
        while true {
            let text = String((0..<8).map { _ in Character(String(Int.random(in: 0...9))) })
            if (try? Passcode.checkNew(text, repeated: text)) != nil { return text }
        }
    }

    /// The RA renews the certificates of the card in the second reader (or, with `repair`, gives it new keys and
    /// certificates whatever the renewal window); its holder typed the passcode. The server decides whether this RA
    /// may (`POST /api/v1/ra/renewals`, `/ra/repairs`); the page follows `subjectRenewalProgress`.
    func startSubjectRenewal(passcode: String, repair: Bool = false) async throws {
        let (token, insertion) = try state.claimSubjectRenewal()
        let card: any SmartcardSession
        do {
            card = try subjectSession(for: insertion)
            try await card.verifyPIN(passcode)
        } catch {
            state.subjectRenewalRefused()
            throw error
        }
        await perform(try state.subjectRenewalStarts(for: insertion))
        let client = RenewalClient(server: server, card: card, raSessionToken: token)
        subjectRenewalTask = Task {
            var failure: (any Error)?
            do {
                if repair {
                    try await client.repair(passcode: passcode) { profile, stage in await self.subjectRenewalProgress(profile, stage) }
                } else {
                    try await client.renew(passcode: passcode) { profile, stage in await self.subjectRenewalProgress(profile, stage) }
                }
            } catch {
                failure = error
            }
            await self.subjectRenewalEnded(failure, serial: insertion.serial)
        }
    }

    var subjectRenewalProgress: BridgeAPI.RenewalProgress { state.subjectRenewal.snapshot }

    private func subjectRenewalProgress(_ profile: CertificateProfileKind, _ stage: RenewalClient.Stage) {
        state.subjectRenewalProgress(profile, stage)
    }

    private func subjectRenewalEnded(_ error: (any Error)?, serial: String) async {
        subjectRenewalTask = nil
        await perform(state.subjectRenewalFinished(error, serial: serial))
    }

    /// The RA unlocks the card in the second reader: its holder typed the new passcode twice. The server releases the
    /// card's PUK to this RA (`POST /api/v1/ra/unlocks`); the passcode is set on the card and never leaves here.
    func unlockSubject(passcode: String, repeated: String) async throws {
        let (token, insertion) = try state.claimSubject(.unlocking)
        do {
            try Passcode.checkNew(passcode, repeated: repeated)
            let card = try subjectSession(for: insertion)
            if try await card.pinState().pukTriesLeft == 0 {
                throw CardDeskError(.cardBlocked, "This card is blocked for good (its unlock key too): it cannot be unlocked. Clear it or issue a new card.")
            }
            let release = try await server.raUnlock(sessionToken: token, cardSerial: insertion.serial)
            guard let done = release.token else { throw CardDeskError(.internalFailure, "The server gave no token for the unlock.") }
            try await UnlockClient.reset(card, with: release, passcode: passcode)
            try await server.completeRAUnlock(sessionToken: token, cardSerial: insertion.serial, token: done)
            try await card.reset()
        } catch {
            await perform(state.subjectWorkEnded(for: insertion))
            throw error
        }
        await perform(state.subjectWorkEnded(for: insertion, saying: "Card \(insertion.serial) (second reader) is unlocked: its holder chose a new passcode."))
    }

    /// The work on the card in the second reader made it another card (issued, or cleared to blank: `serial` ""); the
    /// session to it carries on under the new insertion.
    private func becameAnotherCard(_ serial: String, card: any SmartcardSession, for insertion: CardInsertion, saying outcome: String) async {
        let effects = state.subjectBecame(serial, for: insertion, saying: outcome)
        if let subject = state.subject, subject != insertion { subjectSession = (subject, card) }
        await perform(effects)
    }

    static func describe(_ error: any Error) -> String {
        (error as? CardDeskError)?.reason ?? "\(error)"
    }
}

/// A desktop notification where a desktop session exists (best effort: `notify-send`, if installed).
enum DesktopNotification {
    static func post(title: String, body: String) {
        let environment = ProcessInfo.processInfo.environment
        guard environment["DISPLAY"] != nil || environment["WAYLAND_DISPLAY"] != nil else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["notify-send", "--app-name=CardDesk", title, body]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? process.run()
    }
}
