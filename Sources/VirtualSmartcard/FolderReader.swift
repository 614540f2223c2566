import CardDeskCore
public import Foundation
public import Smartcard

/// A folder that stands for a card reader: a virtual card is inserted by moving its file in, and removed by moving it
/// out (`carddesk card insert FILE --reader DIR`, `carddesk card remove --reader DIR`). One card at a time.
public struct FolderReader: CardReader {
    public let folder: URL
    /// How often the folder is looked at for insert/remove events.
    let pollInterval: Duration

    public init(folder: URL, pollInterval: Duration = .milliseconds(100)) {
        self.folder = folder
        self.pollInterval = pollInterval
    }

    public var name: String { "reader folder \(folder.path)" }

    /// Where the reader remembers where an inserted card came from, so `remove` can put it back.
    var originFile: URL { folder.appendingPathComponent(".carddesk-origin") }

    /// The card file in the reader, if any (hidden files, such as a card being written, are not cards).
    public func cardFile() throws -> URL? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CardDeskError(.invalidInput, "The reader folder \(folder.path) does not exist.")
        }
        try checkPrivate()
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { !$0.hasPrefix(".") && $0.hasSuffix(".json") }
            .sorted()
        return names.first.map { folder.appendingPathComponent($0) }
    }

    public func currentCard() async throws -> any SmartcardSession {
        guard let file = try cardFile() else {
            throw CardDeskError(.cardRemoved, "There is no smartcard in the reader. Insert your card and try again.")
        }
        return PIVCardSession(transport: VirtualPIVCard(file: file))
    }

    /// Moves a card file into the reader.
    public func insert(_ file: URL) throws -> URL {
        if let present = try cardFile() {
            throw CardDeskError(.invalidInput, "The reader already holds a card (\(present.lastPathComponent)); remove it first.")
        }
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw CardDeskError(.invalidInput, "There is no card file \(file.path).")
        }
        try VirtualPIVCard.check(file)
        let destination = folder.appendingPathComponent(file.lastPathComponent.hasSuffix(".json") ? file.lastPathComponent : file.lastPathComponent + ".json")
        try SecretFile.write(Array(file.standardizedFileURL.path.utf8), to: originFile.path)
        guard rename(file.path, destination.path) == 0 else {
            throw CardDeskError(.invalidInput, "Cannot move \(file.path) into the reader \(folder.path) (they must be on the same file system).")
        }
        return destination
    }

    /// A reader folder that another user can write to could swap the card or its `.carddesk-origin` (and so move a
    /// card file anywhere on removal): refuse it. The folder must belong to this user and be writable by no one else.
    func checkPrivate() throws {
        var info = stat()
        guard stat(folder.path, &info) == 0 else {
            throw CardDeskError(.invalidInput, "The reader folder \(folder.path) cannot be read.")
        }
        guard info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
            throw CardDeskError(
                .invalidInput,
                "The reader folder \(folder.path) can be changed by other users, so a card in it could be swapped. Use a folder of your own: chmod 700 \(folder.path)."
            )
        }
    }

    /// Moves the card out of the reader, back where it came from (or to `destination`).
    public func remove(to destination: URL? = nil) throws -> URL {
        guard let file = try cardFile() else {
            throw CardDeskError(.cardRemoved, "There is no smartcard in the reader.")
        }
        let origin = (try? String(contentsOf: originFile, encoding: .utf8)).map(URL.init(fileURLWithPath:))
        let target = destination ?? origin ?? folder.deletingLastPathComponent().appendingPathComponent(file.lastPathComponent)
        guard !FileManager.default.fileExists(atPath: target.path) else {
            throw CardDeskError(.invalidInput, "Cannot put the card back: \(target.path) already exists.")
        }
        guard rename(file.path, target.path) == 0 else {
            throw CardDeskError(.invalidInput, "Cannot move the card out of the reader to \(target.path).")
        }
        try? FileManager.default.removeItem(at: originFile)
        return target
    }

    public func events() -> AsyncStream<ReaderEvent> {
        let folder = self
        return AsyncStream { continuation in
            let task = Task {
                var present: URL?
                var first = true
                while !Task.isCancelled {
                    let now = try? folder.cardFile()
                    if now != present || first {
                        if present != nil, now != present { continuation.yield(.removed) }
                        if let now {
                            let session = PIVCardSession(transport: VirtualPIVCard(file: now))
                            do {
                                continuation.yield(.inserted(serial: try await session.serial(), session: session))
                            } catch let error as CardDeskError where error.code == .unknownCard {
                                continuation.yield(.blank(session: session))
                            } catch {
                                // Not a card this reader can read (yet): looked at again when it changes.
                            }
                        }
                        present = now
                        first = false
                    }
                    try? await Task.sleep(for: folder.pollInterval)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
