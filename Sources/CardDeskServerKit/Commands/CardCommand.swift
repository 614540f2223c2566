import ArgumentParser
import CardDeskCore
import Foundation
import Smartcard
import X509

/// `carddesk-server card issue --user ID --virtual FILE [--passcode-file FILE] [--expires-in-days D]` (passcode on standard input by default)
struct CardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "card", abstract: "Issue smartcards.", subcommands: [Issue.self, EnrolToken.self])

    /// `carddesk-server card enrol-token --user ID [--key-algorithm p256|rsa2048] [--expires-in-days D]`
    struct EnrolToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enrol-token",
            abstract: "Make a single-use token (valid 1 hour) to enrol one blank PIV card for a user at a workstation (carddesk card enrol --token TOKEN)."
        )

        @OptionGroup var store: StoreOptions
        @Option(help: "The 12-digit user ID of the card holder.") var user: String
        @Option(name: .customLong("key-algorithm"), help: "rsa2048 (default) or p256.") var keyAlgorithm: String = "rsa2048"
        @Option(name: .customLong("expires-in-days"), help: "Shorter certificate validity, for demos and tests.") var expiresInDays: Int?

        func run() async throws {
            try await CommandSupport.withInstance(store) { instance in
                guard let algorithm = CardKeyAlgorithm(rawValue: keyAlgorithm) else {
                    throw CardDeskError(.invalidInput, "Unknown key algorithm \"\(keyAlgorithm)\": use rsa2048 or p256.")
                }
                let (token, expiry) = try await instance.enrolment.issueToken(
                    userID: try UserID(user), keyAlgorithm: algorithm, validityDays: expiresInDays, actor: CommandSupport.operatorActor
                )
                print(token)
                FileHandle.standardError.write(Data("Enrolment token for user \(user), valid until \(expiry.timeOfDayDescription) UTC, for one card: carddesk card enrol --token TOKEN\n".utf8))
            }
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a virtual smartcard: keys generated on the card, both certificates issued and written."
        )

        @OptionGroup var store: StoreOptions
        @Option(help: "The 12-digit user ID of the card holder.") var user: String
        @Option(name: .customLong("virtual"), help: "The file for the new virtual card.") var file: String
        @Option(name: .customLong("passcode-file"), help: "A file whose first line is the card holder's passcode (6 to 8 digits). Without it (or with -) the passcode is read from standard input, without echo at a terminal.")
        var passcodeFile: String?
        /// Refused: a passcode in the arguments can be read by every user of the computer (`ps`).
        @Option(help: .hidden) var passcode: String?
        @Option(name: .customLong("expires-in-days"), help: "Shorter certificate validity, for demos and tests (30 puts the card in its renewal window).")
        var expiresInDays: Int?
        @Option(name: .customLong("key-algorithm"), help: "rsa2048 (default) or p256.") var keyAlgorithm: String = "rsa2048"

        func run() async throws {
            var passcode = ""
            try await CommandSupport.reportingErrors {
                guard self.passcode == nil else {
                    throw CardDeskError(.invalidInput, "A passcode on the command line can be read by every user of this computer (ps): type it when asked, pipe it in, or use --passcode-file FILE.")
                }
                passcode = try PasscodePrompt.read(file: passcodeFile ?? "-")
            }
            try await CommandSupport.withInstance(store) { instance in
                guard let algorithm = CardKeyAlgorithm(rawValue: keyAlgorithm) else {
                    throw CardDeskError(.invalidInput, "Unknown key algorithm \"\(keyAlgorithm)\": use rsa2048 or p256.")
                }
                let card = try await instance.cardIssuer.issueVirtualCard(
                    userID: try UserID(user), file: URL(fileURLWithPath: file), passcode: passcode,
                    keyAlgorithm: algorithm, validityDays: expiresInDays, actor: CommandSupport.operatorActor
                )
                print("Issued card \(card.serial) to user \(user) in \(card.file.path)")
                for profile in CertificateProfileKind.allCases {
                    guard let certificate = card.certificates[profile] else { continue }
                    let serial = SerialNumber(bytes: Array(certificate.serialNumber.bytes))
                    print("  \(profile): serial \(serial.hex), expires \(Timestamp(secondsSince1970: Int64(certificate.notValidAfter.timeIntervalSince1970)).dateDescription)")
                }
            }
        }
    }
}
