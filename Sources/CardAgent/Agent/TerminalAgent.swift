import CardDeskAPI
import CardDeskCore
public import Foundation
public import Smartcard

/// The workstation agent in a terminal: watches a reader; when a card arrives it asks for the passcode, signs in
/// (the card signs the server's challenge), lets the holder pick a role, and shows the expiry notification when
/// renewal is open; when the card leaves it ends the session at once.
public struct TerminalAgent: Sendable {
    let reader: any CardReader
    let server: ServerClient
    let output: @Sendable (String) -> Void
    let opener: @Sendable (URL) -> Bool

    /// - Parameters:
    ///   - output: where the agent writes (standard output, flushed per line).
    ///   - opener: opens a URL in the browser; false when there is no browser to open.
    public init(reader: any CardReader, server: ServerClient, output: @escaping @Sendable (String) -> Void, opener: @escaping @Sendable (URL) -> Bool) {
        self.reader = reader
        self.server = server
        self.output = output
        self.opener = opener
    }

    /// The page the expiry notification points to.
    public var renewalURL: URL {
        URL(string: "?operation=selfRenewSmartcard", relativeTo: server.baseURL.absoluteString.hasSuffix("/") ? server.baseURL : server.baseURL.appendingPathComponent(""))!.absoluteURL
    }

    /// Runs until `lines` ends (standard input closed) or the task is cancelled.
    public func run(lines: AsyncStream<String>) async {
        var input = lines.makeAsyncIterator()
        var token: String?
        output("CardDesk agent watching \(reader.name). Insert your smartcard.")
        for await event in reader.events() {
            switch event {
            case .removed:
                if let current = token {
                    try? await server.logout(token: current, reason: "card removed")
                    token = nil
                    output("Card removed: you have been logged out.")
                } else {
                    output("Card removed.")
                }
            case .inserted(let serial, let card):
                do {
                    token = try await signIn(serial: serial, card: card, input: &input)
                } catch let error as CardDeskError {
                    output(error.reason)
                    if error.code == .cardRemoved { output("Card removed.") }
                } catch {
                    output("\(error)")
                }
                if token == nil, Task.isCancelled { return }
            }
        }
    }

    private func signIn(serial: String, card: any SmartcardSession, input: inout AsyncStream<String>.Iterator) async throws -> String? {
        output("Card \(serial) inserted.")
        while true {
            let state = try await card.pinState()
            if state.isLocked {
                output("Your smartcard is locked after three wrong passcodes. Unlock it with self-service unlock (carddesk unlock) or ask your Registration Authority.")
                return nil
            }
            output("Passcode:")
            guard let passcode = await input.next() else { return nil }
            do {
                try await card.verifyPIN(passcode)
                break
            } catch let error as CardDeskError where error.code == .wrongPasscode {
                output(error.reason)
            }
        }
        let challenge = try await server.loginChallenge()
        let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
        var session = try await server.login(.init(cardSerial: serial, challenge: challenge, signature: Data(signature.rawRepresentation)))
        guard let token = session.token else { throw CardDeskError(.internalFailure, "The server opened no session.") }
        if session.role == nil {
            output("Choose the role to work in:")
            for (index, role) in session.roles.enumerated() { output("  \(index + 1). \(role)") }
            while session.role == nil {
                output("Role number [1-\(session.roles.count)]:")
                guard let answer = await input.next() else { return token }
                if let number = Int(answer.trimmingCharacters(in: .whitespaces)), (1...session.roles.count).contains(number) {
                    session = try await server.chooseRole(token: token, number: number)
                } else {
                    output("Please type a number from 1 to \(session.roles.count).")
                }
            }
        }
        output("Signed in as \(session.name) (\(session.userID)) in role \(session.role ?? "").")
        if session.renewal.renewalAvailable, let earliest = session.certificates.map(\.notAfter).min() {
            let days = Terminal.daysLeft(until: Date(timeIntervalSince1970: Double(earliest.millisecondsSince1970) / 1000))
            output("Your smartcard certificates expire on \(earliest.dateDescription) (\(days) days). Renew them now? [Yes/No]")
            let answer = (await input.next() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
            if answer.hasPrefix("y"), opener(renewalURL) {
                output("Opening \(renewalURL.absoluteString) in your browser.")
            } else {
                output("To renew later, copy this link into a supported browser: \(renewalURL.absoluteString)")
            }
        }
        return token
    }
}
