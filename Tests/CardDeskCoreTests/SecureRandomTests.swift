import CardDeskCore
import Foundation
import Testing

@Suite("Secure random bytes")
struct SecureRandomTests {
    @Test("As many bytes as asked (whole and part words), different each time, not all zero")
    func bytes() {
        for count in [0, 1, 16, 32, 255, 256, 257, 1000] {
            let first = SecureRandom.bytes(count), second = SecureRandom.bytes(count)
            #expect(first.count == count && second.count == count)
            if count >= 16 {
                #expect(first != second)
                #expect(first.contains { $0 != 0 })
                // The far end is filled too.
                #expect(first.suffix(16).contains { $0 != 0 })
            }
        }
        // Spread: in 64 KiB every byte value turns up.
        #expect(Set(SecureRandom.bytes(65_536)).count == 256)
    }

    @Test("Record IDs are version 4 UUIDs in lowercase, as Foundation reads them, different each time")
    func uuids() throws {
        var seen = Set<String>()
        for _ in 0..<1_000 {
            let id = SecureRandom.uuid()
            let parsed = try #require(UUID(uuidString: id))
            #expect(parsed.uuidString.lowercased() == id)
            let characters = Array(id)
            #expect(characters.count == 36 && characters[14] == "4" && "89ab".contains(characters[19]))
            #expect(id == id.lowercased())
            seen.insert(id)
        }
        #expect(seen.count == 1_000)
    }
}
