import ArgumentParser
import CardDeskCore
import CardDeskStore

/// `carddesk-server audit verify`: checks the whole hash chain and names the first broken entry.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Check the audit log.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Verify the audit log's hash chain from the first entry to the last.")

        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                switch try await AuditChain.verify(instance.store) {
                case .intact(let entries):
                    print("Audit log intact: \(entries) entries, every hash and link verified.")
                case .broken(let sequence, let reason):
                    throw CardDeskError(.auditChainBroken, "The audit log is broken at entry \(sequence): \(reason). Entries before \(sequence) verify.")
                }
            }
        }
    }
}
