import CardDeskCore

/// One exchange with a card: a command APDU's bytes out, a response APDU's bytes back. PC/SC (`PCSCCard`), the
/// virtual card in this process, and vpcd on the card's side all carry exactly this.
public protocol APDUTransport: Sendable {
    /// Sends one short command APDU and returns the raw response (data and SW1 SW2).
    /// A card taken out fails with `.cardRemoved`.
    func transmit(_ command: [UInt8]) async throws -> [UInt8]
    /// Resets the card (its PIN and management-key authentication are forgotten), as a power cycle does.
    func reset() async throws
}

/// The ISO 7816-4 conversation on top of a transport: data longer than one APDU goes out as a command chain
/// (CLA bit 0x10 on all but the last), long answers come back through `61xx` and GET RESPONSE, and a `6Cxx`
/// (wrong Le) is answered by sending the command again with the length the card asked for.
public struct APDUChannel: Sendable {
    public let transport: any APDUTransport
    /// The most a card may send back in one answer (the largest PIV object is far smaller).
    static let maximumResponse = 65_536

    public init(transport: any APDUTransport) {
        self.transport = transport
    }

    /// Sends `command` (chained when its data is longer than 255 bytes) and gathers the whole answer.
    public func send(_ command: CommandAPDU) async throws -> ResponseAPDU {
        var remaining = command.data[...]
        while remaining.count > 255 {
            var link = command
            link.cla |= 0x10
            link.data = Array(remaining.prefix(255))
            link.le = nil
            let answer = try await exchange(link)
            guard answer.status.isSuccess else { return answer }
            remaining = remaining.dropFirst(255)
        }
        var last = command
        last.data = Array(remaining)
        var answer = try await exchange(last)
        if answer.status.sw1 == 0x6C {
            last.le = answer.status.sw2 == 0 ? 256 : Int(answer.status.sw2)
            answer = try await exchange(last)
        }
        var data = answer.data
        while answer.status.sw1 == 0x61 {
            guard data.count < Self.maximumResponse else {
                throw CardDeskError(.corruptCard, "The card sent more data than any PIV object holds; it is not answering as a PIV card.")
            }
            answer = try await exchange(CommandAPDU(cla: command.cla & 0x0F, ins: 0xC0, p1: 0, p2: 0, le: answer.status.sw2 == 0 ? 256 : Int(answer.status.sw2)))
            data += answer.data
        }
        return ResponseAPDU(data: data, status: answer.status)
    }

    private func exchange(_ command: CommandAPDU) async throws -> ResponseAPDU {
        let raw = try await transport.transmit(command.bytes)
        guard let response = ResponseAPDU(bytes: raw) else {
            throw CardDeskError(.corruptCard, "The card gave a malformed answer (\(raw.count) bytes) to \(command).")
        }
        return response
    }
}
