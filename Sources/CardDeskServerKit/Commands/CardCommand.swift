import ArgumentParser
import CardDeskCore
import Foundation
import Smartcard
import X509

/// `carddesk-server card issue --user ID --virtual FILE --passcode N [--expires-in-days D]`
struct CardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "card", abstract: "Issue smartcards.", subcommands: [Issue.self])

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a virtual smartcard: keys generated on the card, both certificates issued and written."
        )

        @OptionGroup var store: StoreOptions
        @Option(help: "The 12-digit user ID of the card holder.") var user: String
        @Option(name: .customLong("virtual"), help: "The file for the new virtual card.") var file: String
        @Option(help: "The card holder's passcode (6 to 8 digits).") var passcode: String
        @Option(name: .customLong("expires-in-days"), help: "Shorter certificate validity, for demos and tests (30 puts the card in its renewal window).")
        var expiresInDays: Int?
        @Option(name: .customLong("key-algorithm"), help: "rsa2048 (default) or p256.") var keyAlgorithm: String = "rsa2048"

        func run() async throws {
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
