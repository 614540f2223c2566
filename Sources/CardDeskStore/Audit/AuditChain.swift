public import CardDeskCore
public import Crypto

/// The keyed hash chain that makes the audit log tamper-evident: each entry's hash is an HMAC-SHA256, under a key
/// derived from the master key, over the previous entry's hash and every field of the entry. Editing, removing or
/// reordering an entry breaks every hash after it, and someone who can write the database but does not hold the
/// master key cannot compute a replacement chain. Someone who holds both can; `audit head` prints the head so that
/// it can be kept elsewhere (a ticket, a log server) and checked later with `audit verify --anchor`.
public enum AuditChain {
    /// The previous-hash of the first entry.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// HMAC-SHA256 over a length-prefixed encoding of the fields, so no two different entries encode alike.
    public static func hash(key: SymmetricKey, sequence: Int64, event: AuditEvent, previousHash: String) -> String {
        hash(key: KeyedMAC(key: key), sequence: sequence, event: event, previousHash: previousHash)
    }

    /// The same, with the key already set up (what the store does for each entry it appends).
    public static func hash(key: KeyedMAC, sequence: Int64, event: AuditEvent, previousHash: String) -> String {
        Hex.string(key.code(for: encoding(version: "carddesk-audit-v2", sequence: sequence, event: event, previousHash: previousHash)), lowercase: true)
    }

    /// The unkeyed SHA-256 of logs written before the chain was keyed: read only once, when such a log is upgraded.
    static func unkeyedHash(sequence: Int64, event: AuditEvent, previousHash: String) -> String {
        Hex.string(SHA256.hash(data: encoding(version: "carddesk-audit-v1", sequence: sequence, event: event, previousHash: previousHash)), lowercase: true)
    }

    private static func encoding(version: String, sequence: Int64, event: AuditEvent, previousHash: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(
            version.utf8.count + 8 * 8 + event.actor.utf8.count + event.action.rawValue.utf8.count + event.subject.utf8.count
                + event.outcome.rawValue.utf8.count + event.details.utf8.count + previousHash.utf8.count
        )
        bytes.append(contentsOf: version.utf8)
        func append(_ field: String) {
            append(Int64(field.utf8.count))
            bytes.append(contentsOf: field.utf8)
        }
        func append(_ number: Int64) {
            // Big-endian, eight bytes.
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: number >> shift)) }
        }
        append(sequence)
        append(event.time.millisecondsSince1970)
        append(event.actor)
        append(event.action.rawValue)
        append(event.subject)
        append(event.outcome.rawValue)
        append(event.details)
        append(previousHash)
        return bytes
    }

    /// The outcome of checking a chain: data, not a thrown error, so a caller can report it as it likes.
    public enum Verdict: Hashable, Sendable {
        case intact(entries: Int64)
        /// The first entry that does not verify, and why.
        case broken(sequence: Int64, reason: String)
    }

    /// Walks a log and reports its first broken entry. With an `anchor` (a head printed earlier by `audit head`),
    /// that entry must still be in the log with that hash: a log rewritten or cut back by someone who holds the key
    /// fails here.
    public static func verify(_ log: any AuditLogReader, key: SymmetricKey, anchor: Anchor? = nil) async throws -> Verdict {
        let keyed = KeyedMAC(key: key)
        return try await verify(log, anchor: anchor) { hash(key: keyed, sequence: $0, event: $1, previousHash: $2) }
    }

    /// A head kept outside the database: `SEQUENCE:HASH`.
    public struct Anchor: Hashable, Sendable, CustomStringConvertible {
        public let sequence: Int64
        public let hash: String

        public init(sequence: Int64, hash: String) {
            self.sequence = sequence
            self.hash = hash
        }

        public init(_ text: String) throws(CardDeskError) {
            let parts = text.split(separator: ":")
            guard parts.count == 2, let sequence = Int64(parts[0]), sequence >= 1, parts[1].count == 64,
                  parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase })
            else {
                throw CardDeskError(.invalidInput, "\"\(text)\" is not an audit head: use SEQUENCE:HASH as `carddesk-server audit head` prints it.")
            }
            self.init(sequence: sequence, hash: String(parts[1]))
        }

        public var description: String { "\(sequence):\(hash)" }
    }

    static func verify(
        _ log: any AuditLogReader, anchor: Anchor? = nil, hash: @escaping @Sendable (Int64, AuditEvent, String) -> String
    ) async throws -> Verdict {
        let walk = SharedMutex(AuditWalk())
        try await log.forEachAuditEntry { entry in
            walk.withLock { $0.check(entry, anchor: anchor, hash: hash) }
        }
        let final = walk.withLock { $0 }
        if let broken = final.broken { return broken }
        let count = final.expectedSequence - 1
        if let anchor, anchor.sequence > count {
            return .broken(sequence: count + 1, reason: "the anchored head \(anchor) is past the end of the log (entry \(count)): entries were removed")
        }
        let head = try await log.auditHead()
        switch head {
        case nil where count == 0:
            return .intact(entries: 0)
        case let (sequence, hash)? where sequence == count && hash == final.previousHash:
            return .intact(entries: count)
        case let (sequence, _)?:
            return .broken(sequence: min(sequence, count + 1), reason: "the log ends at entry \(count) but its recorded head is entry \(sequence) (entries were removed from the end)")
        case nil:
            return .broken(sequence: 1, reason: "the recorded head of the chain is missing")
        }
    }
}

/// Where a verification has got to: entries are checked one after another, in sequence order.
struct AuditWalk: Sendable {
    var expectedSequence: Int64 = 1
    var previousHash = AuditChain.genesisHash
    var broken: AuditChain.Verdict?

    /// Checks the next entry (nothing more once one is broken): in sequence, linked to the one before, hashed by `hash`,
    /// and equal to the anchor at its sequence.
    mutating func check(_ entry: AuditEntry, anchor: AuditChain.Anchor? = nil, hash: (Int64, AuditEvent, String) -> String) {
        guard broken == nil else { return }
        if entry.sequence != expectedSequence {
            broken = .broken(sequence: expectedSequence, reason: "entry \(expectedSequence) is missing (the next stored entry is \(entry.sequence))")
        } else if entry.previousHash != previousHash {
            broken = .broken(sequence: entry.sequence, reason: "its link to entry \(entry.sequence - 1) does not match")
        } else if hash(entry.sequence, entry.event, entry.previousHash) != entry.hash {
            broken = .broken(sequence: entry.sequence, reason: "its contents do not match its hash (the row was changed, or the hash was not made with this server's master key)")
        } else if let anchor, anchor.sequence == entry.sequence, anchor.hash != entry.hash {
            broken = .broken(sequence: entry.sequence, reason: "its hash is not the anchored head \(anchor) (the log was rewritten from here on)")
        } else {
            expectedSequence += 1
            previousHash = entry.hash
        }
    }
}
