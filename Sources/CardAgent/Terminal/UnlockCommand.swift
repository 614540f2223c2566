import ArgumentParser
import CardDeskAPI
import CardDeskCore
import Foundation
import Smartcard

/// `carddesk unlock --card FILE | --reader DIR [--server URL]`: a code to the holder's email or mobile, then a new
/// passcode typed twice. Works on a locked card, and on one whose passcode is forgotten.
struct UnlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock", abstract: "Unlock your smartcard, or set a new passcode if you forgot it, with a code sent to you."
    )

    @OptionGroup var options: CardOptions

    func run() async throws {
        try await Terminal.run {
            let card = try await options.openCard()
            let client = UnlockClient(server: ServerClient(baseURL: try options.serverURL), card: card)
            let offer = try await client.options()
            print("Unlocking smartcard \(offer.cardSerial).")
            print("Where should we send your unlock code?")
            for (index, contact) in offer.contacts.enumerated() { print("  \(index + 1). \(contact.channel.spoken) \(contact.masked)") }
            var chosen: UnlockAPI.Contact?
            while chosen == nil {
                print("Number [1-\(offer.contacts.count)]:")
                guard let answer = readLine() else { throw CardDeskError(.invalidInput, "No choice was given.") }
                if let number = Int(answer.trimmingCharacters(in: .whitespaces)), offer.contacts.indices.contains(number - 1) {
                    chosen = offer.contacts[number - 1]
                } else {
                    print("Please type a number from 1 to \(offer.contacts.count).")
                }
            }
            let sent = try await client.requestCode(cardSerial: offer.cardSerial, channel: chosen!.channel)
            print("A 6-digit code was sent by \(sent.channel.spoken) to \(sent.sentTo). It works once, for 15 minutes.")
            var verified: UnlockAPI.Verified?
            while verified == nil {
                print("Code:")
                guard let code = readLine() else { throw CardDeskError(.invalidInput, "No code was given.") }
                do {
                    verified = try await client.verify(unlockID: sent.unlockID, code: code)
                } catch let error as CardDeskError where error.code == .wrongCode {
                    print(error.reason)
                }
            }
            while true {
                let passcode = try PasscodePrompt.read(prompt: "New passcode (6 to 8 digits): ")
                let repeated = try PasscodePrompt.read(prompt: "New passcode again: ")
                do {
                    try await client.reset(unlockID: sent.unlockID, token: verified!.token, passcode: passcode, repeated: repeated)
                    break
                } catch let error as CardDeskError where error.code == .weakPasscode {
                    print(error.reason)
                }
            }
            print("Your smartcard is unlocked. Sign in with your new passcode.")
        }
    }
}

/// `carddesk passcode change --card FILE | --reader DIR`: the current passcode, then the new one twice.
struct PasscodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "passcode", abstract: "Change your smartcard's passcode.", subcommands: [Change.self])

    struct Change: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change the passcode, knowing the current one.")

        @OptionGroup var options: CardOptions

        func run() async throws {
            try await Terminal.run {
                let card = try await options.openCard()
                let current = try PasscodePrompt.read(prompt: "Current passcode: ")
                try await card.verifyPIN(current)
                let chosen = try Terminal.chooseNewPasscode()
                try await card.changePIN(current: current, new: chosen)
                print("Your passcode has been changed.")
            }
        }
    }
}
