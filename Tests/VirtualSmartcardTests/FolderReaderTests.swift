import CardDeskCore
import Foundation
import Smartcard
import Testing
import VirtualSmartcard

@Suite("Reader folder")
struct FolderReaderTests {
    @Test("Inserting and removing a card file gives insert and remove events; a removed card's session fails")
    func events() async throws {
        let (file, card, _) = try PIVCardTests.blankCard()
        let expected = PIVCardSession.serial(guid: try #require(try await PIVClient(transport: card).guid()))
        let folder = file.deletingLastPathComponent().appendingPathComponent("reader")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let reader = FolderReader(folder: folder, pollInterval: .milliseconds(20))
        let empty = await #expect(throws: CardDeskError.self) { try await reader.currentCard() }
        #expect(empty?.code == .cardRemoved)

        var events = reader.events().makeAsyncIterator()
        let placed = try reader.insert(file)
        #expect(!FileManager.default.fileExists(atPath: file.path), "inserting moves the card: there is one card")
        guard case .inserted(let serial, let session) = await events.next() else {
            Issue.record("expected an insert event")
            return
        }
        #expect(serial == expected)
        try await session.verifyPIN("123456")
        #expect(try await reader.currentCard().serial() == expected)
        #expect(throws: CardDeskError.self) { try reader.insert(placed) }

        let back = try reader.remove()
        #expect(back.path == file.standardizedFileURL.path)
        guard case .removed = await events.next() else {
            Issue.record("expected a remove event")
            return
        }
        let gone = await #expect(throws: CardDeskError.self) { try await session.serial() }
        #expect(gone?.code == .cardRemoved)
    }
}
