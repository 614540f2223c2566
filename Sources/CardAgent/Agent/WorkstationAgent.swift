public import CardDeskAPI
import CardDeskCore
import Crypto
public import Foundation
public import Smartcard
import Synchronization

/// The workstation agent: watches a reader; when a card arrives the holder signs in (passcode at the terminal or in
/// the page, through the localhost bridge), picks a role, and sees the expiry notification when renewal is open;
/// when the card leaves, the session ends at once. One actor holds the state, so the terminal, the reader and the
/// bridge see the same card and session. The passcode is checked by the card and never leaves this computer.
public actor WorkstationAgent {
    let reader: any CardReader
    let server: ServerClient
    let output: @Sendable (String) -> Void
    let opener: @Sendable (URL) -> Bool
    /// The localhost bridge's port, announced to the server at check-in.
    public private(set) var bridgePort: Int

    private var card: (serial: String, session: any SmartcardSession)?
    private var phase: BridgeAPI.Status.Phase = .noCard {
        didSet {
            // The terminal hides what is typed exactly while the agent waits for a passcode there.
            if (phase == .awaitingPasscode) != (oldValue == .awaitingPasscode) { hideInput(phase == .awaitingPasscode) }
        }
    }
    let hideInput: @Sendable (Bool) -> Void
    /// A sign-in or role choice is in flight: terminal lines wait for it rather than start another.
    private var busy = false
    private var token: String?
    private var view: SessionView?
    private var askingExpiry = false
    private var triesLeft: Int?
    /// Hashes of the hand-over secrets given out (URL fragment, passcode typed in the page), with their expiry.
    private var handoverSecrets: [String: Date] = [:]
    /// How long a hand-over secret may be used.
    static let handoverSecretLifetime: TimeInterval = 600
    let progress = RenewalBoard()

    public static let version = "0.5.0"
    /// How often the agent checks in (presence, keep-alive, ended elsewhere).
    static let heartbeatInterval: Duration = .seconds(5)

    /// - Parameters:
    ///   - output: where the agent writes (standard output, flushed per line).
    ///   - opener: opens a URL in the browser; false when there is no browser to open.
    ///   - hideInput: called with true when the agent starts waiting for a passcode typed at the terminal (which must
    ///     then not echo it), and with false when it stops.
    public init(
        reader: any CardReader, server: ServerClient, bridgePort: Int, output: @escaping @Sendable (String) -> Void,
        opener: @escaping @Sendable (URL) -> Bool, hideInput: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        self.reader = reader
        self.server = server
        self.bridgePort = bridgePort
        self.output = output
        self.opener = opener
        self.hideInput = hideInput
    }

    /// The page the expiry notification points to.
    public nonisolated var renewalURL: URL {
        URL(string: "?operation=selfRenewSmartcard", relativeTo: server.baseURL.absoluteString.hasSuffix("/") ? server.baseURL : server.baseURL.appendingPathComponent(""))!.absoluteURL
    }

    /// The port the bridge really listens on (it may have been asked for port 0).
    public func setBridgePort(_ port: Int) {
        bridgePort = port
    }

    // MARK: Inputs

    /// Runs until the task is cancelled: reader events, terminal lines and the check-in with the server.
    public func run(lines: AsyncStream<String>) async {
        output("CardDesk agent watching \(reader.name). Insert your smartcard.")
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in self.reader.events() {
                    switch event {
                    case .inserted(let serial, let card): await self.inserted(serial: serial, card: card)
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
        card = (serial, session)
        token = nil
        view = nil
        output("Card \(serial) inserted.")
        await askForPasscode()
    }

    func removed() async {
        let current = token
        // A renewal for the card that left stops at its next step (it resumes when the card is back).
        renewalTask?.cancel()
        card = nil
        unlocking = nil
        token = nil
        view = nil
        phase = .noCard
        askingExpiry = false
        triesLeft = nil
        if let current {
            try? await server.logout(token: current, reason: "card removed")
            output("Card removed: you have been logged out.")
        } else {
            output("Card removed.")
        }
    }

    /// A line typed at the terminal: the answer to whatever the agent last asked.
    func line(_ text: String) async {
        let answer = text.trimmingCharacters(in: .whitespaces)
        guard !busy else { return }
        switch phase {
        case .awaitingPasscode:
            do {
                try await signIn(passcode: answer, fromTerminal: true)
            } catch let error as CardDeskError {
                output(error.reason)
                if error.code == .wrongPasscode || error.code == .cardLocked { await askForPasscode() }
            } catch {
                output("\(error)")
            }
        case .awaitingRole:
            guard let view, let number = Int(answer), (1...view.roles.count).contains(number) else {
                output("Please type a number from 1 to \(view?.roles.count ?? 1).")
                return
            }
            do { try await chooseRole(number: number, fromTerminal: true) } catch { output(Self.describe(error)) }
        case .signedIn where askingExpiry:
            askingExpiry = false
            if answer.lowercased().hasPrefix("y"), opener(renewalURLWithHandover()) {
                output("Opening \(renewalURL.absoluteString) in your browser.")
            } else {
                output("To renew later, copy this link into a supported browser: \(renewalURL.absoluteString)")
            }
        default:
            break
        }
    }

    /// Every few seconds, one small request: tell the server an agent runs here (so a page that cannot reach the
    /// bridge can tell "not running" from "blocked"), keep the session open while the card is in, and notice a
    /// session ended elsewhere (logged out from the page).
    func heartbeat() async {
        let current = phase == .signedIn || phase == .awaitingRole ? token : nil
        guard let answer = try? await server.checkIn(bridgePort: bridgePort, token: current) else { return }
        guard let current, let status = answer.session, !status.active, token == current else { return }
        token = nil
        view = nil
        askingExpiry = false
        output("You have been logged out (\(status.reason ?? "session ended")). Insert your card and sign in again.")
        await askForPasscode()
    }

    // MARK: Signing in (terminal and bridge)

    private func askForPasscode() async {
        guard let card else { return }
        do {
            let state = try await card.session.pinState()
            triesLeft = state.pinTriesLeft
            if state.isLocked {
                phase = .cardLocked
                output("Your smartcard is locked after three wrong passcodes. Unlock it with self-service unlock (carddesk unlock) or ask your Registration Authority.")
                return
            }
        } catch {
            output(Self.describe(error))
            return
        }
        phase = .awaitingPasscode
        output("Passcode:")
    }

    /// Checks the passcode on the card, signs the server's challenge, opens the session.
    func signIn(passcode: String, fromTerminal: Bool) async throws {
        guard let card, phase == .awaitingPasscode, !busy else {
            throw CardDeskError(.invalidInput, phase == .noCard ? "Insert your smartcard first." : "The agent is not waiting for a passcode now.")
        }
        busy = true
        defer { busy = false }
        try await checkPasscode(passcode, on: card.session)
        // A renewal interrupted last time (the card was removed, the agent stopped) is finished first: until then the
        // authentication key may not match its certificate.
        if (try? await server.renewalStatus(cardSerial: card.serial))?.renewalInProgress == true {
            output("Finishing the renewal of your certificates that was interrupted...")
            let say = output
            try await RenewalClient(server: server, card: card.session).renew(passcode: passcode) { profile, stage in
                say("\(Terminal.label(profile)): \(stage.rawValue)")
            }
            output("Success: certificate renewed for smartcard")
        }
        let challenge = try await server.loginChallenge()
        let signature = try await card.session.sign(LoginMessage.make(challenge: challenge, cardSerial: card.serial), with: .authentication)
        let session = try await server.login(.init(cardSerial: card.serial, challenge: challenge, signature: Data(signature.rawRepresentation)))
        guard let token = session.token else { throw CardDeskError(.internalFailure, "The server opened no session.") }
        guard self.card?.serial == card.serial else {
            // The card left while signing in.
            try? await server.logout(token: token, reason: "card removed")
            throw CardDeskError(.cardRemoved, "The card was removed.")
        }
        self.token = token
        view = session
        if !fromTerminal { output("Passcode accepted from the browser.") }
        if session.role == nil {
            phase = .awaitingRole
            output("Choose the role to work in:")
            for (index, role) in session.roles.enumerated() { output("  \(index + 1). \(role)") }
            output("Role number [1-\(session.roles.count)]:")
        } else {
            signedIn(session, fromTerminal: fromTerminal)
        }
    }

    func chooseRole(number: Int, fromTerminal: Bool) async throws {
        guard phase == .awaitingRole, let token, !busy else { throw CardDeskError(.invalidInput, "The agent is not waiting for a role now.") }
        busy = true
        defer { busy = false }
        let session = try await server.chooseRole(token: token, number: number)
        guard self.token == token else { throw CardDeskError(.cardRemoved, "The card was removed.") }
        signedIn(session, fromTerminal: fromTerminal)
    }

    private func signedIn(_ session: SessionView, fromTerminal: Bool) {
        view = session
        phase = .signedIn
        output("Signed in as \(session.name) (\(session.userID)) in role \(session.role ?? "").")
        if session.renewal.pukRotationPending, let card {
            // The card's PUK was released for an unlock that stopped before changing it: change it now.
            let server = server, say = output
            Task {
                do {
                    try await PUKRotation.ifPending(server: server, card: card.session, serial: card.serial)
                    say("Your card's unlock key was renewed.")
                } catch {
                    say("Your card's unlock key could not be renewed now (\(Self.describe(error))); it will be next time.")
                }
            }
        }
        guard session.renewal.renewalAvailable, let earliest = session.certificates.map(\.notAfter).min() else { return }
        let days = Terminal.daysLeft(until: Date(timeIntervalSince1970: Double(earliest.millisecondsSince1970) / 1000))
        let text = "Your smartcard certificates expire on \(earliest.dateDescription) (\(days) days)."
        DesktopNotification.post(title: "Your smartcard certificates expire soon", body: text + " Renew them at " + renewalURL.absoluteString)
        // Signed in from the page: the page shows the same notice; the terminal question is for terminal sign-in.
        if fromTerminal {
            askingExpiry = true
            output(text + " Renew them now? [Yes/No]")
        }
    }

    // MARK: What the bridge asks

    func status() -> BridgeAPI.Status {
        BridgeAPI.Status(
            version: Self.version, phase: phase, cardSerial: card?.serial, triesLeft: triesLeft,
            roles: phase == .awaitingRole ? view?.roles ?? [] : []
        )
    }

    /// The token a page must present for anything beyond status and sign-in; nil when nobody is signed in.
    func bridgeToken() -> String? {
        guard phase == .signedIn, let token else { return nil }
        return BridgeToken.derive(sessionToken: token)
    }

    /// A browser joins the agent's session only with a secret the agent gave to the page it opened (or to the page
    /// where the passcode was typed), or with the card's passcode: another program on this computer, which can send
    /// the server's `Origin` too, has neither.
    func handover(_ request: BridgeAPI.HandoverRequest) async throws -> LoginAPI.Handover {
        guard phase == .signedIn, let token, let card else { throw CardDeskError(.authenticationFailed, "Sign in with your smartcard first.") }
        if let secret = request.secret, consumeHandoverSecret(secret) {
            return try await server.handover(token: token)
        }
        guard let passcode = request.passcode, !passcode.isEmpty else {
            throw CardDeskError(
                .passcodeRequired,
                "This page was not opened by the CardDesk agent. Enter your smartcard passcode to continue in this browser."
            )
        }
        try await checkPasscode(passcode, on: card.session)
        return try await server.handover(token: token)
    }

    /// The holder consents, with the passcode, to a new unlock address: the card signs exactly that address.
    func contactConsent(_ consent: BridgeAPI.ContactConsent) async throws -> BridgeAPI.ContactSignature {
        guard phase == .signedIn, let card else { throw CardDeskError(.authenticationFailed, "Sign in with your smartcard first.") }
        try await checkPasscode(consent.passcode, on: card.session)
        let message = ContactChangeMessage.make(challenge: consent.challenge, cardSerial: card.serial, channel: consent.channel, address: consent.address)
        let signature = try await card.session.sign(message, with: .authentication)
        output("Contact address change confirmed with your passcode.")
        return .init(signature: Data(signature.rawRepresentation))
    }

    /// A new single-use hand-over secret (only its hash is kept).
    func newHandoverSecret() -> String {
        let now = Date()
        handoverSecrets = handoverSecrets.filter { $0.value > now }
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        handoverSecrets[Self.hash(secret)] = now.addingTimeInterval(Self.handoverSecretLifetime)
        return secret
    }

    private func consumeHandoverSecret(_ secret: String) -> Bool {
        guard let expiry = handoverSecrets.removeValue(forKey: Self.hash(secret)) else { return false }
        return expiry > Date()
    }

    private static func hash(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The renewal page with a fresh hand-over secret in the fragment: the fragment never reaches a server, and the
    /// page removes it from the address bar as soon as it has read it.
    func renewalURLWithHandover() -> URL {
        URL(string: renewalURL.absoluteString + "#handover=" + newHandoverSecret())!
    }

    /// The passcode checked on the card; the tries left are noted, and a card that locks moves the agent to `cardLocked`.
    /// Every place the agent hands the card a passcode (sign-in, renewal, hand-over, contact consent, change) goes here.
    private func checkPasscode(_ passcode: String, on session: any SmartcardSession) async throws {
        try await checkPasscode(on: session) { try await $0.verifyPIN(passcode) }
    }

    private func checkPasscode(on session: any SmartcardSession, _ operation: (any SmartcardSession) async throws -> Void) async throws {
        do {
            try await operation(session)
            triesLeft = (try? await session.pinState())?.pinTriesLeft
        } catch let error as CardDeskError {
            triesLeft = (try? await session.pinState())?.pinTriesLeft
            if error.code == .cardLocked || triesLeft == 0 { phase = .cardLocked }
            throw error
        }
    }

    /// The renewal running for the card in the reader (cancelled when the card is taken out).
    private var renewalTask: Task<Void, Never>?

    /// Checks the passcode, then renews in the background; the page follows `progress`. The renewal is claimed
    /// before the first suspension, so two requests at once cannot both start one.
    func startRenewal(passcode: String) async throws {
        guard phase == .signedIn, let card, let view else { throw CardDeskError(.authenticationFailed, "Sign in with your smartcard first.") }
        guard renewalTask == nil, !progress.isRunning else { throw CardDeskError(.renewalConflict, "A renewal is already running.") }
        progress.start(view.certificates.map(\.profile))
        do {
            try await checkPasscode(passcode, on: card.session)
        } catch {
            progress.abandon()
            throw error
        }
        guard self.card?.serial == card.serial else {
            progress.abandon()
            throw CardDeskError(.cardRemoved, "The smartcard was removed. Insert it and try again.")
        }
        output("Renewal started from the browser.")
        let client = RenewalClient(server: server, card: card.session)
        let board = progress
        renewalTask = Task {
            do {
                try await client.renew(passcode: passcode) { profile, stage in board.update(profile, stage) }
                board.finish(nil)
                self.output("Success: certificate renewed for smartcard")
            } catch {
                let reason: any Error = Task.isCancelled ? CardDeskError(.cardRemoved, "The smartcard was removed: the renewal stopped. Insert it and renew again to finish.") : error
                board.finish(reason)
                self.output("The renewal stopped: \(Self.describe(reason))")
            }
            await self.renewalEnded()
        }
    }

    private func renewalEnded() {
        renewalTask = nil
    }

    // MARK: Unlock and passcode change (from the page)

    /// The unlock in progress from the page: which card, which request, and the token once the code was right.
    private var unlocking: (serial: String, unlockID: String?, token: String?)?

    private func unlockClient() throws -> (UnlockClient, String) {
        guard let card else { throw CardDeskError(.cardRemoved, "Insert your smartcard first.") }
        return (UnlockClient(server: server, card: card.session), card.serial)
    }

    func unlockOptions() async throws -> UnlockAPI.Options {
        let (client, serial) = try unlockClient()
        let options = try await client.options()
        unlocking = (serial, nil, nil)
        return options
    }

    func requestUnlockCode(channel: ContactChannel) async throws -> UnlockAPI.CodeSent {
        let (client, serial) = try unlockClient()
        let sent = try await client.requestCode(cardSerial: serial, channel: channel)
        unlocking = (serial, sent.unlockID, nil)
        output("An unlock code was sent by \(channel.spoken) to \(sent.sentTo).")
        return sent
    }

    func verifyUnlockCode(_ code: String) async throws {
        let (client, serial) = try unlockClient()
        guard let unlocking, unlocking.serial == serial, let id = unlocking.unlockID else {
            throw CardDeskError(.invalidInput, "Ask for a code first.")
        }
        let verified = try await client.verify(unlockID: id, code: code)
        self.unlocking = (serial, id, verified.token)
    }

    func resetPasscode(_ passcode: String, repeated: String) async throws {
        let (client, serial) = try unlockClient()
        guard let unlocking, unlocking.serial == serial, let id = unlocking.unlockID, let token = unlocking.token else {
            throw CardDeskError(.invalidInput, "Enter the code you were sent first.")
        }
        try await client.reset(unlockID: id, token: token, passcode: passcode, repeated: repeated)
        self.unlocking = nil
        output("Your smartcard is unlocked: sign in with your new passcode.")
        if phase == .cardLocked || phase == .awaitingPasscode {
            await askForPasscode()
        }
    }

    /// Changes the passcode knowing the current one (signed-in pages only).
    func changePasscode(current: String, new: String, repeated: String) async throws {
        guard phase == .signedIn, let card else { throw CardDeskError(.authenticationFailed, "Sign in with your smartcard first.") }
        try Passcode.checkNew(new, repeated: repeated)
        try await checkPasscode(on: card.session) { try await $0.changePIN(current: current, new: new) }
        output("Your passcode has been changed.")
    }

    static func describe(_ error: any Error) -> String {
        (error as? CardDeskError)?.reason ?? "\(error)"
    }
}

/// A renewal's progress as the page polls it: written from the renewal task, read by the bridge.
final class RenewalBoard: Sendable {
    private struct State {
        var state: BridgeAPI.RenewalProgress.State = .idle
        var items: [(CertificateProfileKind, RenewalClient.Stage)] = []
        var message: String?
        var code: String?
    }

    private let state = Mutex(State())

    var isRunning: Bool { state.withLock { $0.state == .running } }

    func start(_ profiles: [CertificateProfileKind]) {
        state.withLock { $0 = State(state: .running, items: profiles.map { ($0, .pending) }) }
    }

    /// A renewal claimed but not started (its passcode was refused): back to idle.
    func abandon() {
        state.withLock { $0 = State() }
    }

    func update(_ profile: CertificateProfileKind, _ stage: RenewalClient.Stage) {
        state.withLock { current in
            if let index = current.items.firstIndex(where: { $0.0 == profile }) {
                current.items[index].1 = stage
            } else {
                current.items.append((profile, stage))
            }
        }
    }

    func finish(_ error: (any Error)?) {
        state.withLock { current in
            if let error {
                current.state = .failed
                current.message = WorkstationAgent.describe(error)
                current.code = (error as? CardDeskError)?.code.name
            } else {
                current.state = .succeeded
                for index in current.items.indices { current.items[index].1 = .done }
            }
        }
    }

    var snapshot: BridgeAPI.RenewalProgress {
        state.withLock { current in
            BridgeAPI.RenewalProgress(
                state: current.state,
                items: current.items.map { .init(profile: $0.0, stage: $0.1.rawValue, step: RenewalClient.Stage.allCases.firstIndex(of: $0.1) ?? 0) },
                message: current.message, errorCode: current.code
            )
        }
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
