public import ArgumentParser
import CardDeskAPI
import CardDeskCore
import Foundation
import Hummingbird
import Logging
import PCSC
import Smartcard
import VirtualSmartcard
import X509
import Dispatch

/// `carddesk`: the card holder's command line (the workstation agent comes with the browser journey).
public struct CardDeskCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "carddesk",
        abstract: "CardDesk on the workstation: check, renew and unlock your smartcard.",
        version: "0.2.0",
        subcommands: [StatusCommand.self, RenewCommand.self, UnlockCommand.self, PasscodeCommand.self, CardReaderCommand.self, AgentCommand.self]
    )

    public init() {}

    /// `--pcsc` may stand alone (the first reader with a PIV card): it then becomes `--pcsc=*` for the parser.
    public static func normalised(_ arguments: [String]) -> [String] {
        arguments.enumerated().map { index, argument in
            guard argument == "--pcsc" else { return argument }
            let next = arguments.indices.contains(index + 1) ? arguments[index + 1] : nil
            return next == nil || next!.hasPrefix("-") ? "--pcsc=\(PCSCReader.anyReader)" : argument
        }
    }
}

/// Options every card command takes: a smartcard reader through PC/SC (`--pcsc [NAME]`), a virtual card file
/// (`--card FILE`), or a reader folder holding one (`--reader DIR`).
struct CardOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Use the card in a PC/SC reader: the first one holding a PIV card, or the one whose name contains NAME.", valueName: "NAME"))
    var pcsc: String?
    @Option(help: "The virtual smartcard file.") var card: String?
    @Option(help: "A reader folder holding the card (see `carddesk card insert`).") var reader: String?
    @Option(help: "The CardDesk server (default http://127.0.0.1:8080, or CARDDESK_SERVER).") var server: String?

    func validate() throws {
        guard [pcsc, card, reader].compactMap({ $0 }).count == 1 else {
            throw ValidationError("Give the card with --pcsc [NAME] (a reader), --card FILE or --reader DIR (one of them).")
        }
    }

    var serverURL: URL {
        get throws {
            let text = server ?? ProcessInfo.processInfo.environment["CARDDESK_SERVER"] ?? "http://127.0.0.1:8080"
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw CardDeskError(.invalidInput, "\"\(text)\" is not a server address: use something like http://127.0.0.1:8080.")
            }
            return url
        }
    }

    func openCard() async throws -> any SmartcardSession {
        if let pcsc {
            return try await PCSCReader(readerName: pcsc).currentCard()
        }
        if let reader {
            return try await FolderReader(folder: URL(fileURLWithPath: reader)).currentCard()
        }
        let file = URL(fileURLWithPath: card ?? "")
        try VirtualPIVCard.check(file)
        return PIVCardSession(transport: VirtualPIVCard(file: file))
    }
}

enum Terminal {
    /// Runs a card command: failures print their message (written for the card holder) and exit with the code's status.
    static func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as CardDeskError {
            FileHandle.standardError.write(Data("\(error.reason)\n".utf8))
            throw ExitCode(error.code.exitStatus)
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// A new passcode typed twice (without echo at a terminal), asked again until it is well formed and not trivial.
    static func chooseNewPasscode() throws -> String {
        var chosen: String?
        while chosen == nil {
            let passcode = try PasscodePrompt.read(prompt: "New passcode (6 to 8 digits): ")
            let repeated = try PasscodePrompt.read(prompt: "New passcode again: ")
            if let problem = weakness(passcode, repeated) {
                FileHandle.standardOutput.write(Data((problem + "\n").utf8))
            } else {
                chosen = passcode
            }
        }
        return chosen!
    }

    /// Why a new passcode is refused, or nil.
    static func weakness(_ passcode: String, _ repeated: String) -> String? {
        do {
            try Passcode.checkNew(passcode, repeated: repeated)
            return nil
        } catch {
            return error.reason
        }
    }

    static func label(_ profile: CertificateProfileKind) -> String {
        profile == .authentication ? "Authentication certificate" : "Signing certificate"
    }

    /// Whole days from now to `end`, rounded to the nearest day.
    static func daysLeft(until end: Date, now: Date = Date()) -> Int {
        Int((end.timeIntervalSince(now) / 86_400).rounded())
    }

    static func day(_ date: Date) -> String {
        Timestamp(secondsSince1970: Int64(date.timeIntervalSince1970)).dateDescription
    }
}

/// `carddesk status --card FILE [--server URL]`
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the card, its certificates and whether renewal is available.")

    @OptionGroup var options: CardOptions

    func run() async throws {
        try await Terminal.run {
            let card = try await options.openCard()
            let serial = try await card.serial()
            let pin = try await card.pinState()
            print("Card \(serial)")
            print(pin.isLocked ? "Passcode: locked (0 of \(pin.pinMaximumTries) tries left) - unlock the card before renewing"
                  : "Passcode tries left: \(pin.pinTriesLeft) of \(pin.pinMaximumTries)")
            for profile in CertificateProfileKind.allCases {
                let slot = CardSlot.main(for: profile)
                guard let certificate = try await card.certificate(in: slot) else {
                    print("\(Terminal.label(profile)): none")
                    continue
                }
                let days = Terminal.daysLeft(until: certificate.notValidAfter)
                let expiry = days >= 0 ? "expires \(Terminal.day(certificate.notValidAfter)) (\(days) day\(days == 1 ? "" : "s"))"
                    : "expired \(Terminal.day(certificate.notValidAfter))"
                print("\(Terminal.label(profile)): \(certificate.subject)")
                print("  serial \(SerialNumber(bytes: Array(certificate.serialNumber.bytes)).hex), \(expiry)")
            }
            let status = try await ServerClient(baseURL: try options.serverURL).renewalStatus(cardSerial: serial)
            if status.renewalAvailable {
                print("Renewal: available. \(status.message)\(status.renewalInProgress ? " A renewal is in progress: run carddesk renew to finish it." : "")")
            } else if let opens = status.opensOn {
                print("Renewal: not available until \(opens.dateDescription).")
            } else {
                print("Renewal: not available. \(status.message)")
            }
        }
    }
}

/// `carddesk renew --card FILE [--server URL]`
struct RenewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "renew", abstract: "Renew the certificates on the card (asks for the passcode).")

    @OptionGroup var options: CardOptions

    func run() async throws {
        try await Terminal.run {
            let server = ServerClient(baseURL: try options.serverURL)
            let card = try await options.openCard()
            let pin = try await card.pinState()
            if pin.isLocked {
                throw CardDeskError(.cardLocked, "Your smartcard is locked after three wrong passcodes. Unlock it with self-service unlock (carddesk unlock) or ask your Registration Authority, then try again.")
            }
            let passcode = try PasscodePrompt.read()
            try await RenewalClient(server: server, card: card).renew(passcode: passcode) { profile, stage in
                // Written straight away, so the progress shows as it happens.
                FileHandle.standardOutput.write(Data("\(Terminal.label(profile)): \(stage.rawValue)\n".utf8))
            }
            print("Success: certificate renewed for smartcard")
            print("Remove your card and log in again to use the new certificates.")
        }
    }
}

/// `carddesk card insert FILE --reader DIR` and `carddesk card remove --reader DIR [--to FILE]`: a virtual card goes
/// into a reader folder and comes out again, as a real card goes into a reader.
struct CardReaderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card",
        abstract: "Virtual cards: make a blank one, put one into the PC/SC reader (vpcd) or a reader folder, or take it out.",
        subcommands: [Enrol.self, Blank.self, Connect.self, Insert.self, Remove.self]
    )

    /// `carddesk card enrol --token TOKEN [--pcsc NAME | --card FILE] [--server URL]`
    struct Enrol: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol a blank PIV card with a token from your Registration Authority: your passcode, keys made on the card, both certificates."
        )
        @Option(help: "The enrolment token the Registration Authority gave you (single use, 1 hour).") var token: String
        @OptionGroup var options: CardOptions

        func run() async throws {
            try await Terminal.run {
                guard let card = try await options.openCard() as? PIVCardSession else {
                    throw CardDeskError(.unsupportedCard, "Only a PIV card can be enrolled.")
                }
                let say: @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
                say("Choose the passcode for this card: 6 to 8 digits, not easy to guess.")
                let passcode = try Terminal.chooseNewPasscode()
                let begun = try await EnrolmentClient(server: ServerClient(baseURL: try options.serverURL), card: card).enrol(token: token, passcode: passcode, progress: say)
                say("Card \(begun.cardSerial) enrolled for user \(begun.userID). Sign in with it and your passcode.")
            }
        }
    }

    /// `carddesk card blank FILE`: a factory-fresh virtual PIV card.
    struct Blank: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a factory-fresh virtual PIV card: default management key, PIN 123456, PUK 12345678, no keys.",
            discussion: "Virtual cards are for demos, tests and training: whoever can read the file can read the card's keys."
        )
        @Argument(help: "The new card's file (must not exist).") var file: String
        @Option(help: "The virtual-card manufacturer whose attestation key the card gets (default CARDDESK_VIRTUAL_CARD_MANUFACTURER, else ./.carddesk/virtual-card-manufacturer, which the demo server makes).")
        var manufacturer: String?

        func run() async throws {
            try await Terminal.run {
                let folder = manufacturer ?? ProcessInfo.processInfo.environment["CARDDESK_VIRTUAL_CARD_MANUFACTURER"] ?? ".carddesk/virtual-card-manufacturer"
                let exists = FileManager.default.fileExists(atPath: URL(fileURLWithPath: folder).appendingPathComponent("manufacturer-ca.pem").path)
                if manufacturer != nil, !exists {
                    throw CardDeskError(.invalidInput, "There is no virtual-card manufacturer in \(folder) (a CardDesk server makes one in <data>/virtual-card-manufacturer).")
                }
                let maker = exists ? try VirtualCardManufacturer.open(folder: URL(fileURLWithPath: folder)) : nil
                let card = try VirtualPIVCard.blank(file: URL(fileURLWithPath: file), manufacturer: maker)
                let guid = try await PIVClient(transport: card).guid() ?? []
                print("Blank virtual PIV card made in \(file) (card \(Hex.string(guid).lowercased())).")
                print("PIN 123456, PUK 12345678, the default management key: enrol it before use (carddesk card enrol).")
                print(maker.map { "It attests its keys as made by the manufacturer in \($0.folder.path)." }
                      ?? "No virtual-card manufacturer here: this card cannot attest its keys, and a server that requires attestation refuses them.")
            }
        }
    }

    /// `carddesk card connect FILE [--vpcd HOST:PORT]`: the card goes into vpcd's reader until this stops.
    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Insert a virtual PIV card into the PC/SC reader of vsmartcard's vpcd, until stopped (Ctrl-C or SIGTERM removes it).",
            discussion: "pcscd then offers the card to every program on this computer (OpenSC, yubico-piv-tool, carddesk --pcsc). vpcd listens on TCP: on a shared network, firewall its ports (35963, 35964)."
        )
        @Argument(help: "The virtual card file.") var file: String
        @Option(help: "Where vpcd listens (its first reader: 127.0.0.1:35963, the second: 35964).") var vpcd: String = "127.0.0.1:35963"

        func run() async throws {
            try await Terminal.run {
                let url = URL(fileURLWithPath: file)
                try VirtualPIVCard.check(url)
                let (host, port) = try VPCDConnection.address(vpcd)
                let connection = VPCDConnection(card: VirtualPIVCard(file: url), host: host, port: port)
                let say: @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
                let stop = SignalWatch.onTermination { connection.stop() }
                defer { stop.cancel() }
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    let thread = Thread {
                        connection.run { event in
                            switch event {
                            case .inserted: say("Card \(url.lastPathComponent) inserted into vpcd at \(host):\(port). Stop this command to remove it.")
                            case .waiting(let reason): say("Waiting for vpcd: \(reason)")
                            case .disconnected: say("vpcd closed the connection (pcscd stopped?); reconnecting.")
                            }
                        }
                        done.resume()
                    }
                    thread.start()
                }
                say("Card removed.")
            }
        }
    }

    struct Insert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move a virtual card file into a reader folder.")
        @Argument(help: "The virtual card file.") var file: String
        @Option(help: "The reader folder.") var reader: String

        func run() async throws {
            try await Terminal.run {
                let reader = FolderReader(folder: URL(fileURLWithPath: reader))
                let placed = try reader.insert(URL(fileURLWithPath: file))
                print("Card inserted into \(reader.folder.path) (\(placed.lastPathComponent)).")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take the card out of a reader folder (back where it came from).")
        @Option(help: "The reader folder.") var reader: String
        @Option(help: "Where to put the card file (default: where it was inserted from).") var to: String?

        func run() async throws {
            try await Terminal.run {
                let reader = FolderReader(folder: URL(fileURLWithPath: reader))
                let target = try reader.remove(to: to.map { URL(fileURLWithPath: $0) })
                print("Card removed from \(reader.folder.path) (now \(target.path)).")
            }
        }
    }
}

/// `carddesk agent --reader DIR [--server URL] [--subject-reader DIR2]`: the long-running workstation agent (terminal
/// edition); at an RA desk it also watches a second reader for the card holder's card.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agent", abstract: "Watch a reader: sign in when a card is inserted, log out when it is removed.")

    @Option(help: "The reader folder to watch (default ./.carddesk/reader, where the demo server puts its card; or CARDDESK_READER).")
    var reader: String?
    @Option(help: ArgumentHelp("Watch PC/SC readers instead: the first holding a PIV card, or the one whose name contains NAME.", valueName: "NAME"))
    var pcsc: String?
    @Option(help: "The CardDesk server (default http://127.0.0.1:8080, or CARDDESK_SERVER).") var server: String?
    @Option(name: .customLong("bridge-port"), help: "The localhost bridge's port for the web pages (default 43490; 0 picks a free one).")
    var bridgePort: Int = 43490
    @Option(name: .customLong("subject-reader"), help: "At an RA desk: a second reader folder, for the card holder's card (the RA's own card stays in the first).")
    var subjectReader: String?
    @Option(name: .customLong("subject-pcsc"), help: ArgumentHelp("At an RA desk: the PC/SC reader whose name contains NAME holds the card holder's card.", valueName: "NAME"))
    var subjectPCSC: String?

    func run() async throws {
        try await Terminal.run {
            let text = server ?? ProcessInfo.processInfo.environment["CARDDESK_SERVER"] ?? "http://127.0.0.1:8080"
            guard let url = URL(string: text), url.host != nil else {
                throw CardDeskError(.invalidInput, "\"\(text)\" is not a server address: use something like http://127.0.0.1:8080.")
            }
            let watched: any CardReader
            if let pcsc {
                guard reader == nil else { throw CardDeskError(.invalidInput, "Give --pcsc or --reader, not both.") }
                watched = PCSCReader(readerName: pcsc)
            } else {
                let folder = FolderReader(folder: URL(fileURLWithPath: reader ?? ProcessInfo.processInfo.environment["CARDDESK_READER"] ?? ".carddesk/reader"))
                _ = try folder.cardFile()
                watched = folder
            }
            var second: (any CardReader)?
            if let subjectPCSC {
                guard subjectReader == nil else { throw CardDeskError(.invalidInput, "Give --subject-pcsc or --subject-reader, not both.") }
                guard let pcsc, PCSCReader(readerName: pcsc).name != PCSCReader(readerName: nil).name, subjectPCSC != PCSCReader.anyReader, !subjectPCSC.isEmpty else {
                    throw CardDeskError(.invalidInput, "At an RA desk, name both PC/SC readers: --pcsc NAME for your own card and --subject-pcsc NAME for the card holder's.")
                }
                second = PCSCReader(readerName: subjectPCSC)
            } else if let subjectReader {
                let folder = FolderReader(folder: URL(fileURLWithPath: subjectReader))
                _ = try folder.cardFile()
                guard folder.folder.standardizedFileURL != (watched as? FolderReader)?.folder.standardizedFileURL else {
                    throw CardDeskError(.invalidInput, "The second reader must be another folder than the first.")
                }
                second = folder
            }
            let client = ServerClient(baseURL: url)
            let output: @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
            var logger = Logger(label: "carddesk.agent.bridge")
            logger.logLevel = .warning
            let agent = WorkstationAgent(reader: watched, subjectReader: second, server: client, bridgePort: bridgePort, output: output, opener: Browser.open, hideInput: TerminalEcho.hide)
            let bridge = LocalBridge(agent: agent, serverOrigin: client.origin, port: bridgePort).application(logger: logger) { port in
                guard let port else { return }
                await agent.setBridgePort(port)
                output("Bridge for the web pages on http://127.0.0.1:\(port) (answers \(client.origin) only).")
            }
            defer { TerminalEcho.hide(false) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await bridge.runService()
                    } catch {
                        throw CardDeskError(.configuration, "The agent's bridge cannot listen on 127.0.0.1:\(bridgePort) (\(error)). Another CardDesk agent (yours, or another user's on this computer) holds that port. The bridge serves one user per workstation, so this agent does not start: stop the other agent, or choose another --bridge-port.")
                    }
                }
                group.addTask { await agent.run(lines: StandardInputLines.stream()) }
                try await group.next()
                group.cancelAll()
            }
        }
    }
}

/// SIGINT and SIGTERM, delivered to a handler instead of ending the process at once (until `cancel()`).
final class SignalWatch {
    private let sources: [any DispatchSourceSignal]

    private init(sources: [any DispatchSourceSignal]) {
        self.sources = sources
    }

    static func onTermination(_ handler: @escaping @Sendable () -> Void) -> SignalWatch {
        SignalWatch(sources: [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        })
    }

    func cancel() {
        sources.forEach { $0.cancel() }
    }
}

/// Opens a URL with `$BROWSER`, else `xdg-open`.
enum Browser {
    static func open(_ url: URL) -> Bool {
        let command = ProcessInfo.processInfo.environment["BROWSER"].flatMap { $0.isEmpty ? nil : $0 } ?? "xdg-open"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [command, url.absoluteString]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            return true
        } catch {
            return false
        }
    }
}

/// Lines typed at the terminal (or piped in), read on a thread of their own.
enum StandardInputLines {
    static func stream() -> AsyncStream<String> {
        AsyncStream { continuation in
            let thread = Thread {
                while let line = Swift.readLine(strippingNewline: true) { continuation.yield(line) }
                continuation.finish()
            }
            thread.start()
        }
    }
}
