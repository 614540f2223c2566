import CardDeskCore
/// A command APDU (ISO/IEC 7816-4), short form: up to 255 bytes of data per command (longer data goes out as a
/// chain, see `APDUChannel`) and up to 256 bytes expected back.
public struct CommandAPDU: Hashable, Sendable, CustomStringConvertible {
    public var cla: UInt8
    public var ins: UInt8
    public var p1: UInt8
    public var p2: UInt8
    public var data: [UInt8]
    /// Bytes expected in the answer: nil for none, 1...256 (256 is encoded as 00).
    public var le: Int?

    public init(cla: UInt8 = 0x00, ins: UInt8, p1: UInt8, p2: UInt8, data: [UInt8] = [], le: Int? = nil) {
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le
    }

    /// The bytes on the wire. The data must fit in one short APDU (255 bytes).
    public var bytes: [UInt8] {
        precondition(data.count <= 255, "a short APDU carries at most 255 bytes; chain longer data")
        var out = [cla, ins, p1, p2]
        if !data.isEmpty { out += [UInt8(data.count)] + data }
        if let le { out.append(UInt8(truncatingIfNeeded: le == 256 ? 0 : le)) }
        return out
    }

    /// Parses a short APDU (cases 1 to 4) as a card receives it.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= 4 else { return nil }
        self.init(cla: bytes[0], ins: bytes[1], p1: bytes[2], p2: bytes[3])
        let body = bytes.dropFirst(4)
        switch body.count {
        case 0:
            break
        case 1:
            le = body.first! == 0 ? 256 : Int(body.first!)
        default:
            let lc = Int(body.first!)
            guard lc > 0 else { return nil } // extended length: not spoken here
            if body.count == 1 + lc {
                data = Array(body.dropFirst())
            } else if body.count == 2 + lc {
                data = Array(body.dropFirst().prefix(lc))
                le = body.last! == 0 ? 256 : Int(body.last!)
            } else {
                return nil
            }
        }
    }

    public var description: String {
        "\(Hex.string([cla, ins, p1, p2]))" + (data.isEmpty ? "" : " Lc=\(data.count)") + (le.map { " Le=\($0)" } ?? "")
    }
}

/// A response APDU: data and the two status bytes.
public struct ResponseAPDU: Hashable, Sendable {
    public var data: [UInt8]
    public var status: StatusWord

    public init(data: [UInt8] = [], status: StatusWord) {
        self.data = data
        self.status = status
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count >= 2 else { return nil }
        data = Array(bytes.dropLast(2))
        status = StatusWord(bytes[bytes.count - 2], bytes[bytes.count - 1])
    }

    public var bytes: [UInt8] { data + [status.sw1, status.sw2] }
}

/// SW1 SW2, with the values PIV cards use.
public struct StatusWord: Hashable, Sendable, CustomStringConvertible {
    public let sw1: UInt8
    public let sw2: UInt8

    public init(_ sw1: UInt8, _ sw2: UInt8) {
        self.sw1 = sw1
        self.sw2 = sw2
    }

    public init(_ value: UInt16) { self.init(UInt8(value >> 8), UInt8(value & 0xFF)) }

    public var value: UInt16 { UInt16(sw1) << 8 | UInt16(sw2) }
    /// The two bytes, as a response APDU without data.
    public var bytes: [UInt8] { [sw1, sw2] }

    public static let success = StatusWord(0x9000)
    public static let securityStatusNotSatisfied = StatusWord(0x6982)
    public static let authenticationBlocked = StatusWord(0x6983)
    public static let conditionsNotSatisfied = StatusWord(0x6985)
    public static let wrongData = StatusWord(0x6A80)
    public static let notFound = StatusWord(0x6A82)
    public static let notEnoughMemory = StatusWord(0x6A84)
    public static let incorrectP1P2 = StatusWord(0x6A86)
    public static let wrongLength = StatusWord(0x6700)
    public static let instructionNotSupported = StatusWord(0x6D00)
    public static let classNotSupported = StatusWord(0x6E00)
    public static let memoryFailure = StatusWord(0x6581)

    /// `61xx`: more data is waiting (xx bytes, 00 = 256 or more); fetch it with GET RESPONSE.
    public static func moreData(_ count: Int) -> StatusWord { StatusWord(0x61, UInt8(truncatingIfNeeded: min(count, 256))) }
    /// `63Cx`: a wrong PIN or PUK, x tries left.
    public static func triesLeft(_ count: Int) -> StatusWord { StatusWord(0x63, 0xC0 | UInt8(min(max(count, 0), 15))) }

    public var isSuccess: Bool { self == .success }
    /// The tries left after a wrong PIN or PUK (`63Cx`), if this is that answer.
    public var triesLeft: Int? { sw1 == 0x63 && sw2 & 0xF0 == 0xC0 ? Int(sw2 & 0x0F) : nil }

    public var description: String { Hex.string([sw1, sw2]) }
}

