public import CardDeskAPI
public import CardDeskCore
import Foundation
public import Smartcard

/// Self-service unlock from the workstation: the server checks who asks (a code sent to the holder's confirmed
/// address) and authorises this one card to reset its passcode; the card does the reset. The new passcode is
/// checked here and set on the card; it never leaves the workstation.
public struct UnlockClient: Sendable {
    let server: ServerClient
    let card: any SmartcardSession

    public init(server: ServerClient, card: any SmartcardSession) {
        self.server = server
        self.card = card
    }

    /// The card's serial and where a code can go. A card blocked for good is refused here, before any code is sent.
    public func options() async throws -> UnlockAPI.Options {
        let state = try await card.pinState()
        if state.pukTriesLeft == 0 {
            throw CardDeskError(.cardBlocked, "Your smartcard is blocked for good, so it cannot be unlocked online. Take it to your Registration Authority.")
        }
        return try await server.unlockOptions(cardSerial: try await card.serial())
    }

    public func requestCode(cardSerial: String, channel: ContactChannel) async throws -> UnlockAPI.CodeSent {
        try await server.requestUnlockCode(cardSerial: cardSerial, channel: channel)
    }

    public func verify(unlockID: String, code: String) async throws -> UnlockAPI.Verified {
        try await server.verifyUnlockCode(unlockID: unlockID, code: code)
    }

    /// Checks the new passcode (typed twice), has the server authorise the reset, resets the card, and reports it.
    public func reset(unlockID: String, token: String, passcode: String, repeated: String) async throws {
        try Passcode.checkNew(passcode, repeated: repeated)
        let challenge = try await card.adminChallenge()
        let response = try await server.authoriseUnlock(unlockID: unlockID, token: token, cardChallenge: challenge)
        try await card.resetPIN(newPIN: passcode, authorisation: AdminAuthorisation(challenge: challenge, response: response))
        try await server.completeUnlock(unlockID: unlockID, token: token)
    }
}
