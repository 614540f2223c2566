import ArgumentParser
import CardDeskCore
import CardDeskStore

/// `carddesk-server audit verify [--anchor SEQ:HASH]` checks the whole keyed chain and names the first broken entry;
/// `carddesk-server audit head` prints the head, to be kept somewhere the database's administrators cannot change.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Check the audit log.", subcommands: [Verify.self, Head.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Verify the audit log's keyed hash chain from the first entry to the last.")

        @OptionGroup var store: StoreOptions
        @Option(help: "A head printed earlier by `audit head` (SEQUENCE:HASH): that entry must still be in the log, unchanged.")
        var anchor: String?

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                let anchor = try anchor.map(AuditChain.Anchor.init)
                switch try await instance.store.verifyAuditChain(anchor: anchor) {
                case .intact(let entries):
                    print("Audit log intact: \(entries) entries, every hash and link verified\(anchor.map { " (anchored head \($0.sequence) matches)" } ?? "").")
                case .broken(let sequence, let reason):
                    throw CardDeskError(.auditChainBroken, "The audit log is broken at entry \(sequence): \(reason). Entries before \(sequence) verify.")
                }
            }
        }
    }

    struct Head: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the audit log's head (SEQUENCE:HASH) after verifying the chain; keep it elsewhere and check it later with `audit verify --anchor`."
        )

        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                guard let head = try await instance.store.auditHead() else {
                    throw CardDeskError(.auditChainBroken, "The audit log has no recorded head.")
                }
                // The chain is verified up to this very head, whatever is appended meanwhile.
                let anchor = AuditChain.Anchor(sequence: head.sequence, hash: head.hash)
                guard case .intact = try await instance.store.verifyAuditChain(anchor: anchor) else {
                    throw CardDeskError(.auditChainBroken, "The audit log does not verify: run `carddesk-server audit verify` to see where. No head is printed for a broken log.")
                }
                print(anchor)
            }
        }
    }
}
