public import CardDeskCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Smartcard
import Synchronization

/// A card that vpcd's reader can hold: it answers each command APDU, or nil to leave the reader at that moment.
public protocol VPCDCard: Sendable {
    var answerToReset: [UInt8] { get }
    func answer(_ apdu: [UInt8]) -> [UInt8]?
    /// Power off, power on or reset: the card forgets its session state.
    func reset()
}

extension VirtualPIVCard: VPCDCard {
    public var answerToReset: [UInt8] { Self.atr }
    public func answer(_ apdu: [UInt8]) -> [UInt8]? { respond(to: apdu) }
}

/// Puts a virtual PIV card into vsmartcard's virtual reader (vpcd), so that pcscd offers it to every program on the
/// machine (OpenSC, yubico-piv-tool, browsers, `carddesk --pcsc`) as a card in the reader "Virtual PCD 00 00".
///
/// vpcd listens on TCP (35963 for its first reader); the card connects to it. Each message is a two-byte
/// big-endian length and a payload. A one-byte payload is a control message: 00 power off, 01 power on, 02 reset
/// (no answer), 04 "send the ATR". Anything longer is a command APDU, answered with the response APDU. Closing the
/// connection is taking the card out. pcscd (and vpcd with it) may stop and start again: the card keeps trying.
///
/// `run()` blocks its thread (run it on a thread of its own, not on Swift's cooperative pool); `stop()` from any
/// thread removes the card and makes `run()` return.
public final class VPCDConnection: Sendable {
    public enum Event: Sendable, Equatable {
        /// Connected: the card is in the reader.
        case inserted
        /// vpcd cannot be reached (pcscd not running, or another card already in that reader); trying again.
        case waiting(String)
        /// vpcd closed the connection (pcscd stopped); trying again.
        case disconnected
    }

    public let host: String
    public let port: UInt16
    let card: any VPCDCard
    private let state = Mutex<(stopped: Bool, socket: Int32)>((false, -1))
    /// How long to wait between attempts to reach vpcd.
    let retryInterval: Duration

    public init(card: any VPCDCard, host: String = "127.0.0.1", port: UInt16 = 35963, retryInterval: Duration = .milliseconds(250)) {
        self.card = card
        self.host = host
        self.port = port
        self.retryInterval = retryInterval
    }

    /// Parses `HOST:PORT` (the `--vpcd` option).
    public static func address(_ text: String) throws(CardDeskError) -> (host: String, port: UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0,
              !text[..<colon].isEmpty else {
            throw CardDeskError(.invalidInput, "\"\(text)\" is not a vpcd address: use HOST:PORT, for example 127.0.0.1:35963.")
        }
        return (String(text[..<colon]), port)
    }

    /// Takes the card out (closes the connection) and makes `run()` return.
    public func stop() {
        state.withLock { state in
            state.stopped = true
            if state.socket >= 0 { shutdown(state.socket, Int32(SHUT_RDWR)) }
        }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// Keeps the card in the reader until `stop()`: connects, serves vpcd, and reconnects when vpcd goes away.
    public func run(events: @Sendable (Event) -> Void) {
        var lastWait: String?
        while !isStopped {
            let socket: Int32
            do {
                socket = try connectSocket()
            } catch {
                if lastWait != error.reason {
                    events(.waiting(error.reason))
                    lastWait = error.reason
                }
                sleep(retryInterval)
                continue
            }
            let registered = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.socket = socket
                return true
            }
            guard registered else {
                close(socket)
                break
            }
            lastWait = nil
            card.reset()
            events(.inserted)
            serve(socket)
            state.withLock { $0.socket = -1 }
            close(socket)
            card.reset()
            if !isStopped {
                events(.disconnected)
                sleep(retryInterval)
            }
        }
    }

    private func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        _ = nanosleep(&request, nil)
    }

    /// Answers vpcd until it closes the connection (or `stop()` shuts it).
    private func serve(_ socket: Int32) {
        while true {
            guard let header = readExactly(socket, 2) else { return }
            let length = Int(header[0]) << 8 | Int(header[1])
            guard length > 0, let payload = readExactly(socket, length) else { return }
            if payload.count == 1 {
                switch payload[0] {
                case 0x00, 0x01, 0x02:
                    // Power off, power on, reset: the card forgets its PIN and management-key state.
                    card.reset()
                case 0x04:
                    guard writeFrame(socket, card.answerToReset) else { return }
                default:
                    break
                }
                continue
            }
            guard let answer = card.answer(payload) else {
                // The card leaves the reader without answering.
                stop()
                return
            }
            guard writeFrame(socket, answer) else { return }
        }
    }

    private func connectSocket() throws(CardDeskError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw CardDeskError(.invalidInput, "Cannot resolve the vpcd host \(host).")
        }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        var reason = "nothing listens on \(host):\(port)"
        while let current = entry {
            let descriptor = socket(current.pointee.ai_family, current.pointee.ai_socktype, current.pointee.ai_protocol)
            if descriptor >= 0 {
                if connect(descriptor, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 {
                    var one: Int32 = 1
                    // One small frame per APDU: send each at once (no Nagle delay).
                    setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    return descriptor
                }
                reason = String(cString: strerror(errno))
                close(descriptor)
            }
            entry = current.pointee.ai_next
        }
        throw CardDeskError(.cardRemoved, "vpcd is not reachable on \(host):\(port) (\(reason)). Is pcscd running with vsmartcard-vpcd installed?")
    }

    private func readExactly(_ socket: Int32, _ count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress! + offset, count - offset, 0) }
            if received < 0, errno == EINTR { continue }
            guard received > 0 else { return nil }
            offset += received
            Self.acknowledgeAtOnce(socket)
        }
        return buffer
    }

    /// vpcd sends a frame's length and its bytes in two writes, so with Nagle's algorithm on its side the bytes wait
    /// for our acknowledgement of the length, which Linux delays by up to 40 ms: about 0.1 s per APDU. Acknowledging
    /// every read at once (TCP_QUICKACK, which the kernel clears again, so it is set after each read) removes the wait.
    private static func acknowledgeAtOnce(_ socket: Int32) {
        #if os(Linux)
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    private func writeFrame(_ socket: Int32, _ payload: [UInt8]) -> Bool {
        let frame = [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload
        var offset = 0
        while offset < frame.count {
            let sent = frame.withUnsafeBytes { send(socket, $0.baseAddress! + offset, frame.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0, errno == EINTR { continue }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }
}
