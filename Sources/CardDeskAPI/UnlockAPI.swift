public import CardDeskCore
public import Foundation

/// Self-service unlock over HTTP (`/api/v1/unlock/…`). The new passcode never appears here: the server releases
/// the card's PUK for the reset and names its successor.
public enum UnlockAPI {
    public struct Start: Codable, Sendable {
        public let cardSerial: String
        public init(cardSerial: String) { self.cardSerial = cardSerial }
    }

    /// Where a code can be sent, masked.
    public struct Contact: Codable, Sendable, Hashable {
        public let channel: ContactChannel
        public let masked: String
        public init(channel: ContactChannel, masked: String) {
            self.channel = channel
            self.masked = masked
        }
    }

    public struct Options: Codable, Sendable {
        public let cardSerial: String
        public let contacts: [Contact]
        public init(cardSerial: String, contacts: [Contact]) {
            self.cardSerial = cardSerial
            self.contacts = contacts
        }
    }

    public struct RequestCode: Codable, Sendable {
        public let cardSerial: String
        public let channel: ContactChannel
        public init(cardSerial: String, channel: ContactChannel) {
            self.cardSerial = cardSerial
            self.channel = channel
        }
    }

    public struct CodeSent: Codable, Sendable {
        public let unlockID: String
        public let channel: ContactChannel
        public let sentTo: String
        public let expiresInSeconds: Int
        public init(unlockID: String, channel: ContactChannel, sentTo: String, expiresInSeconds: Int) {
            self.unlockID = unlockID
            self.channel = channel
            self.sentTo = sentTo
            self.expiresInSeconds = expiresInSeconds
        }
    }

    public struct Verify: Codable, Sendable {
        public let code: String
        public init(code: String) { self.code = code }
    }

    /// The code was right: this token authorises resetting this one card's passcode, for a few minutes.
    public struct Verified: Codable, Sendable {
        public let token: String
        public let expiresInSeconds: Int
        public init(token: String, expiresInSeconds: Int) {
            self.token = token
            self.expiresInSeconds = expiresInSeconds
        }
    }

    /// The card's PUK, released for one reset, and the PUK the card must be given right after (PIV's CHANGE
    /// REFERENCE DATA on the PUK). `token` (a rotation at the card's next contact) reports the change.
    public struct PUKRelease: Codable, Sendable {
        public let puk: String
        public let nextPUK: String
        public var token: String?
        public init(puk: String, nextPUK: String, token: String?) {
            self.puk = puk
            self.nextPUK = nextPUK
            self.token = token
        }
    }
}

/// The RA desk's card work, asked by the agent with the RA's session token (`Authorization: Bearer`), for the card in
/// its second reader: `POST /api/v1/ra/renewals` (a `RenewalAPI.Start` signed by that card), `POST /api/v1/ra/unlocks`
/// (`UnlockAPI.Start`: the card's PUKs for the reset, with a token), `POST /api/v1/ra/unlocks/done` (`UnlockDone`), and
/// `POST /api/v1/ra/enrolments` (`Issue`: a token to enrol a blank card for the person).
public enum RADeskAPI {
    /// Issuing a new card at the desk (`POST /api/v1/ra/enrolments`): for whom, with which key type.
    public struct Issue: Codable, Sendable {
        public let userID: String
        public let keyAlgorithm: String
        public init(userID: String, keyAlgorithm: String) {
            self.userID = userID
            self.keyAlgorithm = keyAlgorithm
        }
    }

    /// A card the desk works on (`POST /api/v1/ra/repairs`, `POST /api/v1/ra/clears`).
    public struct Card: Codable, Sendable {
        public let cardSerial: String
        public init(cardSerial: String) { self.cardSerial = cardSerial }
    }

    /// What the agent needs to reset a cleared card to its factory state: its management key and PUK (the card is
    /// cancelled already: they open nothing any more).
    public struct ClearRelease: Codable, Sendable {
        public let cardSerial: String
        public let managementKeyAlgorithm: UInt8
        public let managementKey: Data
        public let puk: String
        public init(cardSerial: String, managementKeyAlgorithm: UInt8, managementKey: Data, puk: String) {
            self.cardSerial = cardSerial
            self.managementKeyAlgorithm = managementKeyAlgorithm
            self.managementKey = managementKey
            self.puk = puk
        }
    }

    /// The single-use enrolment token for that card (the enrolment API then takes it, as `carddesk card enrol` does).
    public struct EnrolmentToken: Codable, Sendable {
        public let token: String
        public init(token: String) { self.token = token }
    }

    public struct UnlockDone: Codable, Sendable {
        public let cardSerial: String
        public let token: String
        public init(cardSerial: String, token: String) {
            self.cardSerial = cardSerial
            self.token = token
        }
    }
}
