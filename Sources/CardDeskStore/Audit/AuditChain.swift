public import CardDeskCore
import Crypto

/// The hash chain that makes the audit log tamper-evident: each entry's hash covers the previous entry's hash
/// and every field of the entry, so editing, removing or reordering an entry breaks every hash after it.
public enum AuditChain {
    /// The previous-hash of the first entry.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// SHA-256 over a length-prefixed encoding of the fields, so no two different entries encode alike.
    public static func hash(sequence: Int64, event: AuditEvent, previousHash: String) -> String {
        var bytes: [UInt8] = Array("carddesk-audit-v1".utf8)
        func append(_ field: String) {
            let utf8 = Array(field.utf8)
            append(Int64(utf8.count))
            bytes += utf8
        }
        func append(_ number: Int64) {
            bytes += (0..<8).reversed().map { UInt8(truncatingIfNeeded: number >> ($0 * 8)) }
        }
        append(sequence)
        append(event.time.millisecondsSince1970)
        append(event.actor)
        append(event.action.rawValue)
        append(event.subject)
        append(event.outcome.rawValue)
        append(event.details)
        append(previousHash)
        return SHA256.hash(data: bytes).map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }.joined()
    }

    /// The outcome of checking a chain: data, not a thrown error, so a caller can report it as it likes.
    public enum Verdict: Hashable, Sendable {
        case intact(entries: Int64)
        /// The first entry that does not verify, and why.
        case broken(sequence: Int64, reason: String)
    }

    /// Walks a log and reports its first broken entry.
    public static func verify(_ log: any AuditLogReader) async throws -> Verdict {
        let walk = Mutex(AuditWalk())
        try await log.forEachAuditEntry { entry in
            walk.withLock { state in
                guard state.broken == nil else { return }
                if entry.sequence != state.expectedSequence {
                    state.broken = .broken(
                        sequence: state.expectedSequence,
                        reason: "entry \(state.expectedSequence) is missing (the next stored entry is \(entry.sequence))"
                    )
                } else if entry.previousHash != state.previousHash {
                    state.broken = .broken(sequence: entry.sequence, reason: "its link to entry \(entry.sequence - 1) does not match")
                } else if AuditChain.hash(sequence: entry.sequence, event: entry.event, previousHash: entry.previousHash) != entry.hash {
                    state.broken = .broken(sequence: entry.sequence, reason: "its contents do not match its hash (the row was changed)")
                } else {
                    state.expectedSequence += 1
                    state.previousHash = entry.hash
                }
            }
        }
        let final = walk.withLock { $0 }
        if let broken = final.broken { return broken }
        let count = final.expectedSequence - 1
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

/// Where a verification has got to.
private struct AuditWalk: Sendable {
    var expectedSequence: Int64 = 1
    var previousHash = AuditChain.genesisHash
    var broken: AuditChain.Verdict?
}
