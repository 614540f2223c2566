@testable import CardDeskServerKit
import Logging
import Synchronization
import Testing

@Suite("Text log lines")
struct TextLogHandlerTests {
    /// Collects what a StreamLogHandler writes.
    final class Lines: TextOutputStream, Sendable {
        let written = Mutex<[String]>([])
        func write(_ string: String) { written.withLock { $0.append(string) } }
    }

    @Test("The text handler writes StreamLogHandler's lines, with the metadata set on the logger and given with the line")
    func sameLinesAsStreamLogHandler() {
        let ours = Lines(), theirs = Lines()
        var text = Logger(label: "carddesk") { _ in TextLogHandler(StreamLogHandler(label: "carddesk", stream: ours, metadataProvider: nil)) }
        var stream = Logger(label: "carddesk") { label in StreamLogHandler(label: label, stream: theirs, metadataProvider: nil) }
        for index in 0..<2 {
            text[metadataKey: "hb.request.id"] = "\(index)"
            stream[metadataKey: "hb.request.id"] = "\(index)"
            text[metadataKey: "a"] = "first"
            stream[metadataKey: "a"] = "first"
            text.logLevel = .info
            stream.logLevel = .info
            text.debug("not written")
            stream.debug("not written")
            text.info("written", metadata: ["z": "last"])
            stream.info("written", metadata: ["z": "last"])
            text[metadataKey: "a"] = nil
            stream[metadataKey: "a"] = nil
            text.warning("again")
            stream.warning("again")
        }
        let (a, b) = (ours.written.withLock { $0 }, theirs.written.withLock { $0 })
        #expect(a.count == 4)
        // Lines start with the time to the second: compare what follows it.
        #expect(a.map { $0.split(separator: " ", maxSplits: 1).last } == b.map { $0.split(separator: " ", maxSplits: 1).last })
        #expect(a.first?.hasSuffix("info carddesk: a=first hb.request.id=0 z=last [CardDeskServerKitTests] written\n") == true)
        #expect(a.last?.hasSuffix("warning carddesk: hb.request.id=1 [CardDeskServerKitTests] again\n") == true)
    }
}
