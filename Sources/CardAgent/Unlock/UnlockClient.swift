public import CardDeskAPI
public import CardDeskCore
import Foundation
public import Smartcard

/// Self-service unlock from the workstation: the server checks who asks (a code sent to the holder's confirmed
/// address) and releases the card's PUK for one reset, naming the new PUK the card gets straight after. The new
/// passcode is checked here and set on the card; it never leaves the workstation.
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

    /// Checks the new passcode (typed twice), resets the card with the released PUK, gives the card its new PUK,
    /// and reports both. Run again after an interruption, it finishes: the same two PUKs come back, and a card that
    /// already has the new PUK is reset with that one.
    public func reset(unlockID: String, token: String, passcode: String, repeated: String) async throws {
        try Passcode.checkNew(passcode, repeated: repeated)
        let release = try await server.releasePUK(unlockID: unlockID, token: token)
        try await Self.reset(card, with: release, passcode: passcode)
        try await server.completeUnlock(unlockID: unlockID, token: token)
        try await card.reset()
    }

    /// Resets the card's passcode with the released PUK and gives the card its next PUK (self-service, and the RA's
    /// desk). A card that refuses the released PUK had it changed by an earlier run: it is reset with the next one.
    static func reset(_ card: any SmartcardSession, with release: UnlockAPI.PUKRelease, passcode: String) async throws {
        do {
            try await card.unblockPIN(puk: release.puk, newPIN: passcode)
            try await card.changePUK(current: release.puk, new: release.nextPUK)
        } catch let error as CardDeskError where error.code == .notAuthorised {
            try await card.unblockPIN(puk: release.nextPUK, newPIN: passcode)
        }
    }
}
