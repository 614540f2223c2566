public import CardDeskCore
import CPCSC
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
public import Smartcard
import Synchronization

/// PC/SC (pcsc-lite) from Swift: the smartcard service every reader, real or virtual, is reached through.
///
/// pcsc-lite's calls block their thread (a wait for a card event blocks until it comes or times out), so each
/// context has a serial dispatch queue of its own and every call runs there, never on Swift's cooperative pool;
/// every wait has a bound. Types follow pcsc-lite's own (`DWORD`, `LONG`), which differ between Linux and macOS.
public enum PCSC {
    /// A pcsc-lite failure, with its code (`SCARD_E_…`) and a sentence for the card holder.
    public struct Failure: Error, CustomStringConvertible {
        public let code: Int64
        public let operation: String

        public var description: String { "\(operation) failed: \(Self.text(code)) (0x\(String(UInt32(truncatingIfNeeded: code), radix: 16, uppercase: true)))" }

        static func text(_ code: Int64) -> String {
            switch UInt32(truncatingIfNeeded: code) {
            case 0x8010_001D: "the smartcard service (pcscd) is not running"
            case 0x8010_002E: "there is no smartcard reader"
            case 0x8010_000C, 0x8010_0069: "there is no card in the reader"
            case 0x8010_000A: "timed out"
            case 0x8010_0002: "cancelled"
            case 0x8010_0009: "there is no such reader"
            case 0x8010_000B: "another program is using the card exclusively"
            case 0x8010_0068: "the card was reset by another program"
            case 0x8010_0066: "the card is not responding"
            default: "PC/SC error"
            }
        }

        /// The same failure as CardDesk reports it.
        public var cardDeskError: CardDeskError {
            switch UInt32(truncatingIfNeeded: code) {
            case 0x8010_000C, 0x8010_0069, 0x8010_0017, 0x8010_0009:
                CardDeskError(.cardRemoved, "The smartcard was removed. Insert it and try again.")
            case 0x8010_001D:
                CardDeskError(.cardRemoved, "The smartcard service (pcscd) is not running, so no card reader can be used. Start pcscd (or install it), then try again.")
            case 0x8010_002E:
                CardDeskError(.cardRemoved, "No smartcard reader is connected. Connect your reader and insert your card.")
            default:
                CardDeskError(.cardRemoved, "The card reader could not talk to the card: \(description).")
            }
        }
    }

    static func check(_ result: LONG, _ operation: String) throws(Failure) {
        guard result == SCARD_S_SUCCESS else { throw Failure(code: Int64(result), operation: operation) }
    }

    /// The reader-list pseudo-reader whose state changes when a reader is plugged in or out.
    static let plugAndPlay = "\\\\?PnP?\\Notification"
}

/// A PC/SC context and the thread its calls run on.
public final class PCSCContext: Sendable {
    let handle: SCARDCONTEXT
    let queue: DispatchQueue

    private init(handle: SCARDCONTEXT, queue: DispatchQueue) {
        self.handle = handle
        self.queue = queue
    }

    deinit {
        SCardReleaseContext(handle)
    }

    /// Connects to pcscd. Fails with a clear message when the service is not running.
    public static func establish() async throws -> PCSCContext {
        let queue = DispatchQueue(label: "carddesk.pcsc")
        let handle: SCARDCONTEXT = try await run(on: queue, timeout: .seconds(10)) {
            var context: SCARDCONTEXT = 0
            try PCSC.check(SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &context), "SCardEstablishContext")
            return context
        }
        return PCSCContext(handle: handle, queue: queue)
    }

    /// Runs `body` on `queue`, waiting at most `timeout` for it. (A call that overruns keeps its thread, but the
    /// caller gets an answer.)
    static func run<T: Sendable>(on queue: DispatchQueue, timeout: Duration, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let once = Mutex<CheckedContinuation<T, any Error>?>(nil)
        return try await withCheckedThrowingContinuation { continuation in
            once.withLock { $0 = continuation }
            queue.async {
                let result = Result { try body() }
                once.withLock { $0.take() }?.resume(with: result)
            }
            let (seconds, attoseconds) = timeout.components
            let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
                once.withLock { $0.take() }?.resume(throwing: CardDeskError(.cardRemoved, "The card reader did not answer within \(seconds) seconds."))
            }
        }
    }

    func run<T: Sendable>(timeout: Duration = .seconds(30), _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Self.run(on: queue, timeout: timeout, body)
    }

    /// The names of the readers pcscd knows (empty when there are none).
    public func readers() async throws -> [String] {
        let handle = handle
        return try await run { try Self.listReaders(handle) }
    }

    static func listReaders(_ handle: SCARDCONTEXT) throws -> [String] {
        var length: DWORD = 0
        let first = SCardListReaders(handle, nil, nil, &length)
        if first == SCARD_E_NO_READERS_AVAILABLE { return [] }
        try PCSC.check(first, "SCardListReaders")
        var buffer = [CChar](repeating: 0, count: Int(length))
        let second = SCardListReaders(handle, nil, &buffer, &length)
        if second == SCARD_E_NO_READERS_AVAILABLE { return [] }
        try PCSC.check(second, "SCardListReaders")
        // A multi-string: names separated by NUL, ended by two.
        return buffer.split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    }

    /// Connects (shared, T=1) to the card in `reader`.
    public func connect(reader: String) async throws -> PCSCCard {
        let handle = handle
        let (card, atr): (SCARDHANDLE, [UInt8]) = try await run {
            var card: SCARDHANDLE = 0
            var active: DWORD = 0
            try PCSC.check(SCardConnect(handle, reader, DWORD(SCARD_SHARE_SHARED), DWORD(SCARD_PROTOCOL_T1), &card, &active), "SCardConnect")
            var atr = [UInt8](repeating: 0, count: Int(MAX_ATR_SIZE))
            var atrLength = DWORD(atr.count)
            var state: DWORD = 0
            var protocolInUse: DWORD = 0
            var nameLength: DWORD = 0
            let status = SCardStatus(card, nil, &nameLength, &state, &protocolInUse, &atr, &atrLength)
            return (card, status == SCARD_S_SUCCESS ? Array(atr.prefix(Int(atrLength))) : [])
        }
        return PCSCCard(context: self, handle: card, reader: reader, atr: atr)
    }

    /// Ends a wait for card events in progress on this context (from any thread).
    public func cancel() {
        SCardCancel(handle)
    }

    /// What a reader holds.
    public struct ReaderState: Sendable, Hashable {
        public let reader: String
        public let cardPresent: Bool
        public let atr: [UInt8]
        /// pcscd's whole state word for the reader (its upper half counts events): given back as the current state,
        /// the next wait returns only when something really changes.
        let word: UInt64

        init(reader: String, cardPresent: Bool, atr: [UInt8], word: UInt64) {
            self.reader = reader
            self.cardPresent = cardPresent
            self.atr = atr
            self.word = word
        }
    }

    /// Waits up to `timeout` for a change in the readers' states (or readers plugged in or out); returns the states
    /// then. Pass the states you last saw (empty at first: answers at once).
    public func waitForChange(from known: [String: ReaderState], timeout: Duration) async throws -> [String: ReaderState] {
        let handle = handle
        let milliseconds = DWORD(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await run(timeout: timeout + .seconds(5)) {
            let names = try Self.listReaders(handle)
            var result: [String: ReaderState] = [:]
            // Each reader's state word (current, then what pcscd reports) and a pointer to its name.
            let cNames = (names + [PCSC.plugAndPlay]).map { strdup($0)! }
            defer { cNames.forEach { free($0) } }
            var states = cNames.enumerated().map { index, name -> SCARD_READERSTATE in
                var state = SCARD_READERSTATE()
                state.szReader = UnsafePointer(name)
                if index < names.count, let previous = known[names[index]] {
                    state.dwCurrentState = previous.word != 0 ? DWORD(previous.word) & ~DWORD(SCARD_STATE_CHANGED)
                        : DWORD(previous.cardPresent ? SCARD_STATE_PRESENT : SCARD_STATE_EMPTY)
                } else if index == names.count {
                    // Plug-and-play: report when the number of readers changes.
                    state.dwCurrentState = DWORD(names.count) << 16
                } else {
                    state.dwCurrentState = DWORD(SCARD_STATE_UNAWARE)
                }
                return state
            }
            let waited = known.isEmpty ? 0 : milliseconds
            let outcome = SCardGetStatusChange(handle, waited, &states, DWORD(states.count))
            guard outcome == SCARD_S_SUCCESS || outcome == SCARD_E_TIMEOUT else {
                try PCSC.check(outcome, "SCardGetStatusChange")
                return [:]
            }
            for (index, name) in names.enumerated() {
                let event = states[index].dwEventState & 0xFFFF
                let present = event & DWORD(SCARD_STATE_PRESENT) != 0 && event & DWORD(SCARD_STATE_MUTE) == 0
                let atr = withUnsafeBytes(of: states[index].rgbAtr) { Array($0.prefix(Int(states[index].cbAtr))) }
                result[name] = ReaderState(reader: name, cardPresent: present, atr: present ? atr : [], word: UInt64(states[index].dwEventState))
            }
            return result
        }
    }
}

/// A connection to the card in one reader: APDUs go through pcscd.
public final class PCSCCard: APDUTransport, Sendable {
    let context: PCSCContext
    let handle: SCARDHANDLE
    public let reader: String
    public let atr: [UInt8]
    private let open = Mutex(true)

    init(context: PCSCContext, handle: SCARDHANDLE, reader: String, atr: [UInt8]) {
        self.context = context
        self.handle = handle
        self.reader = reader
        self.atr = atr
    }

    /// Letting go resets the card: a verified PIN or management-key authentication must not outlive this
    /// connection, where the next program on the workstation would find it.
    deinit {
        if open.withLock({ $0 }) { SCardDisconnect(handle, DWORD(SCARD_RESET_CARD)) }
    }

    public func transmit(_ command: [UInt8]) async throws -> [UInt8] {
        let handle = handle
        do {
            let answer = try await context.run {
                var pci = g_rgSCardT1Pci
                var buffer = [UInt8](repeating: 0, count: 65_544)
                var length = DWORD(buffer.count)
                try PCSC.check(SCardTransmit(handle, &pci, command, DWORD(command.count), nil, &buffer, &length), "SCardTransmit")
                return Array(buffer.prefix(Int(length)))
            }
            // No status word at all: the card went away while answering (vpcd reports that as an empty answer).
            guard answer.count >= 2 else { throw PCSC.Failure(code: 0x8010_0069, operation: "SCardTransmit").cardDeskError }
            return answer
        } catch let failure as PCSC.Failure {
            throw failure.cardDeskError
        }
    }

    /// Resets the card (its PIN and management-key state are forgotten) and reconnects.
    public func reset() async throws {
        let handle = handle
        do {
            try await context.run {
                var active: DWORD = 0
                try PCSC.check(SCardReconnect(handle, DWORD(SCARD_SHARE_SHARED), DWORD(SCARD_PROTOCOL_T1), DWORD(SCARD_RESET_CARD), &active), "SCardReconnect")
            }
        } catch let failure as PCSC.Failure {
            throw failure.cardDeskError
        }
    }

    /// Lets go of the card, resetting it (nothing authenticated stays open on it).
    public func disconnect() async {
        let handle = handle
        let wasOpen = open.withLock { state -> Bool in
            defer { state = false }
            return state
        }
        guard wasOpen else { return }
        _ = try? await context.run { _ = SCardDisconnect(handle, DWORD(SCARD_RESET_CARD)) }
    }
}
