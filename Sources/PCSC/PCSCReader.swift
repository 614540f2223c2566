public import CardDeskCore
public import Smartcard

/// A PC/SC reader as the agent's card reader: the card in it (a PIV card: a YubiKey, a PIV smartcard, or the
/// virtual card in vpcd's reader), and insert/remove events from pcscd.
///
/// With no reader name, the first reader holding a PIV card is used; a name matches any reader whose name contains
/// it, ignoring case (as yubico-piv-tool's `-r` does).
public struct PCSCReader: CardReader {
    public let readerName: String?
    /// How long one wait for card events lasts before the loop looks at cancellation again.
    let pollInterval: Duration

    /// The name that stands for "any reader" (`--pcsc` alone, or `--pcsc '*'`).
    public static let anyReader = "*"

    public init(readerName: String?, pollInterval: Duration = .milliseconds(1000)) {
        self.readerName = readerName.flatMap { $0.isEmpty || $0 == Self.anyReader ? nil : $0 }
        self.pollInterval = pollInterval
    }

    public var name: String { readerName.map { "PC/SC reader \"\($0)\"" } ?? "PC/SC (the first reader with a PIV card)" }

    func matching(_ readers: [String]) -> [String] {
        guard let readerName else { return readers }
        return readers.filter { $0.lowercased().contains(readerName.lowercased()) }
    }

    static func establish() async throws -> PCSCContext {
        do {
            return try await PCSCContext.establish()
        } catch let failure as PCSC.Failure {
            throw failure.cardDeskError
        }
    }

    public func currentCard() async throws -> any SmartcardSession {
        let context = try await Self.establish()
        let readers = try await context.readers()
        let candidates = matching(readers)
        if readerName != nil, candidates.isEmpty {
            throw CardDeskError(.cardRemoved, "There is no smartcard reader named \"\(readerName!)\". Readers here: \(readers.isEmpty ? "none" : readers.joined(separator: ", ")).")
        }
        let states = try await context.waitForChange(from: [:], timeout: .zero)
        for reader in candidates where states[reader]?.cardPresent == true {
            if let session = try? await open(reader, context: context) { return session }
        }
        throw CardDeskError(.cardRemoved, "There is no smartcard in \(readerName.map { "the reader \"\($0)\"" } ?? "any reader"). Insert your card and try again.")
    }

    /// Connects to the card in `reader` and checks it is a PIV card.
    func open(_ reader: String, context: PCSCContext) async throws -> PIVCardSession {
        let card: PCSCCard
        do {
            card = try await context.connect(reader: reader)
        } catch let failure as PCSC.Failure {
            throw failure.cardDeskError
        }
        let session = PIVCardSession(transport: card)
        _ = try await session.pinState()
        return session
    }

    public func events() -> AsyncStream<ReaderEvent> {
        let reader = self
        return AsyncStream { continuation in
            let task = Task {
                var context: PCSCContext?
                var known: [String: PCSCContext.ReaderState] = [:]
                var current: String?
                // Readers whose card was looked at already (not PIV, or not enrolled): not tried again until it changes.
                var tried: Set<String> = []
                while !Task.isCancelled {
                    do {
                        if context == nil {
                            context = try await Self.establish()
                            known = [:]
                        }
                        let states = try await context!.waitForChange(from: known, timeout: reader.pollInterval)
                        if let held = current, states[held]?.cardPresent != true {
                            current = nil
                            continuation.yield(.removed)
                        }
                        tried = tried.filter { states[$0]?.cardPresent == true }
                        if current == nil {
                            for name in reader.matching(states.keys.sorted()) where states[name]?.cardPresent == true && !tried.contains(name) {
                                tried.insert(name)
                                // The card gets a context of its own: this one stays in its waits for events.
                                guard let cardContext = try? await Self.establish(),
                                      let session = try? await reader.open(name, context: cardContext) else { continue }
                                do {
                                    let serial = try await session.serial()
                                    current = name
                                    continuation.yield(.inserted(serial: serial, session: session))
                                    break
                                } catch let error as CardDeskError where error.code == .unknownCard && reader.readerName != nil {
                                    // A blank PIV card in the reader named for it (an RA desk's second reader).
                                    current = name
                                    continuation.yield(.blank(session: session))
                                    break
                                } catch {
                                    continue
                                }
                            }
                        }
                        known = states
                    } catch {
                        // pcscd stopped (or restarted): the card is gone for now; try again shortly.
                        if current != nil {
                            current = nil
                            continuation.yield(.removed)
                        }
                        context = nil
                        try? await Task.sleep(for: .milliseconds(500))
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
