import ArgumentParser
import CardDeskCore
import Foundation
import Logging

/// Options every operator command takes, so commands and a running server can share one store.
struct StoreOptions: ParsableArguments {
    @Option(help: "The data directory (default ./.carddesk; env CARDDESK_DATA).")
    var data: String?

    @Option(name: .customLong("database-url"), help: "postgres://user:password@host:port/db, or sqlite:FILE (default: SQLite in the data directory).")
    var databaseURL: String?

    @Option(help: "A JSON configuration file (default <data>/config.json when it exists).")
    var config: String?

    @Option(name: .customLong("public-url"), help: "The server's public URL, named in certificates (default http://HOST:PORT).")
    var publicURL: String?

    @Option(name: .customLong("policy-oid"), help: "The certificate policy OID written into card holder certificates.")
    var policyOID: String?

    var flags: ServerSettings.Flags {
        var flags: ServerSettings.Flags = [:]
        flags["data"] = data
        flags["database.url"] = databaseURL
        flags["public.url"] = publicURL
        flags["certificates.policy.oid"] = policyOID
        return flags
    }
}

enum CommandSupport {
    /// The actor recorded in the audit log for operator commands.
    static var operatorActor: String {
        "operator:\(ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.environment["LOGNAME"] ?? "unknown")"
    }

    /// Opens the data directory for a one-shot command (quiet logs, so standard output carries only the result),
    /// runs `body`, closes, and turns any failure into one clear line on standard error and a distinct exit status.
    static func withInstance(
        _ options: StoreOptions, extraFlags: ServerSettings.Flags = [:],
        _ body: (CardDeskInstance) async throws -> Void
    ) async throws {
        try await reportingErrors {
            let settings = try await ServerSettings.resolve(flags: options.flags.merging(extraFlags) { $1 }, configFile: options.config)
            let logger = LoggingSetup.bootstrap(format: "text", level: "warning")
            let instance = try await CardDeskInstance.open(settings, logger: logger)
            do {
                try await body(instance)
            } catch {
                await instance.close()
                throw error
            }
            await instance.close()
        }
    }

    static func reportingErrors(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as CardDeskError {
            printError(error.reason)
            throw ExitCode(error.code.exitStatus)
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }
}
