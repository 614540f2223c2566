import CardDeskCore

/// What a reader reports: a card arrived (with a session to it) or the card was taken out.
public enum ReaderEvent: Sendable {
    case inserted(serial: String, session: any SmartcardSession)
    /// A PIV card without CardDesk's identity (no CHUID): a blank card, which an RA can issue at their desk.
    case blank(session: any SmartcardSession)
    case removed
}

/// A card reader: the current card, and a stream of insert/remove events.
///
/// `FolderReader` (a folder standing for a reader, for virtual cards) is the one implementation today; a PC/SC
/// reader (SCardGetStatusChange) feeds the same events later, so the agent does not change.
public protocol CardReader: Sendable {
    /// A human name for messages ("reader folder /tmp/reader", "Virtual PCD 00 00").
    var name: String { get }
    /// A session to the card in the reader now; `.cardRemoved` when the reader is empty.
    func currentCard() async throws -> any SmartcardSession
    /// Insert and remove events, starting with the current state, until the task is cancelled.
    func events() -> AsyncStream<ReaderEvent>
}
