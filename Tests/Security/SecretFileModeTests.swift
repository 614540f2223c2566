import CardDeskCore
import Foundation
import Synchronization
import Testing
import Smartcard
import VirtualSmartcard

/// Item 7: secrets are never readable by another user, not even while they are being written.
@Suite("Security: secret files are the owner's alone from the first byte", .serialized)
struct SecretFileModeTests {
    @Test("300 writes of a card file are watched: no file in its folder is ever readable by others, whatever the umask")
    func cardWritesUnderOpenUmask() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-modes-\(UUID().uuidString)")
        try SecretFile.createDirectory(folder.path)
        // The test process keeps its umask (usually 022): umask is process-wide, and other suites run beside this one.
        // A writer that creates a file and restricts it afterwards shows a 0644 window under it; SecretFile has none.
        let file = folder.appendingPathComponent("card.json")
        let card = PIVCardSession(transport: try VirtualPIVCard.blank(file: file))

        // A watcher lists the folder as fast as it can and records any file that others could read. Its state lives in
        // an object the thread holds, and the test waits for the thread to end before reading it.
        let watch = Watch()
        let watcher = Thread {
            while !watch.stop.load(ordering: .acquiring) {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
                    var info = stat()
                    if stat(folder.appendingPathComponent(name).path, &info) == 0, info.st_mode & 0o077 != 0 {
                        watch.exposed.withLock { $0.append("\(name) \(String(info.st_mode & 0o777, radix: 8))") }
                    }
                }
            }
            watch.done.store(true, ordering: .releasing)
        }
        watcher.start()
        for _ in 0..<300 {
            try? await card.verifyPIN("654321")    // a wrong passcode: the try counter is written
            try await card.verifyPIN("123456")     // the counter reset: written again
        }
        watch.stop.store(true, ordering: .releasing)
        while !watch.done.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(watch.exposed.withLock { $0 }.isEmpty, "readable by others while written: \(watch.exposed.withLock { Array($0.prefix(5)) })")
        var info = stat()
        #expect(stat(file.path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat(folder.path, &info) == 0 && info.st_mode & 0o777 == 0o700)
    }

    /// What the watcher thread shares with the test.
    final class Watch: Sendable {
        let exposed = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)
        let done = Atomic<Bool>(false)
    }

    @Test("A reader folder that others can write to is refused: its card or origin file could be swapped")
    func sharedReaderFolderRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-shared-reader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        #expect(chmod(folder.path, 0o777) == 0)
        let refused = #expect(throws: CardDeskError.self) { try FolderReader(folder: folder).cardFile() }
        #expect(refused?.reason.contains("can be changed by other users") == true)
        #expect(chmod(folder.path, 0o700) == 0)
        #expect(try FolderReader(folder: folder).cardFile() == nil)
    }
}
