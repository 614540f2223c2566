public import CardDeskCore
import Crypto
public import Foundation

extension LoginAPI {
    /// A single-use code that lets a browser join the agent's session (`POST /api/v1/session/handovers`).
    public struct Handover: Codable, Sendable {
        public let code: String
        public let expiresInSeconds: Int
        public init(code: String, expiresInSeconds: Int) {
            self.code = code
            self.expiresInSeconds = expiresInSeconds
        }
    }

    /// The agent says it is running on this workstation (`POST /api/v1/agents/checkin`), so a page that cannot reach
    /// it can tell "not running" from "blocked by the browser".
    public struct AgentCheckIn: Codable, Sendable {
        public let bridgePort: Int
        public init(bridgePort: Int) { self.bridgePort = bridgePort }
    }

    /// The answer to a check-in: with the agent's session token, whether that session is still open; without one, a
    /// fresh sign-in challenge (as `POST /api/v1/login/challenges` gives: single use, valid two minutes), so that the
    /// agent's next sign-in needs no request for one. Absent from an older server's answer.
    public struct AgentCheckInAnswer: Codable, Sendable {
        public let session: SessionStatus?
        public let challenge: String?
        public init(session: SessionStatus?, challenge: String? = nil) {
            self.session = session
            self.challenge = challenge
        }
    }

    /// `GET /api/v1/agents/presence`: whether an agent on the caller's address checked in recently.
    public struct AgentPresence: Codable, Sendable {
        public let seen: Bool
        public let bridgePort: Int?
        public init(seen: Bool, bridgePort: Int?) {
            self.seen = seen
            self.bridgePort = bridgePort
        }
    }

    /// Whether a session is still open, and why it ended. Asking does not count as activity.
    public struct SessionStatus: Codable, Sendable, Equatable {
        public let active: Bool
        public let reason: String?
        public init(active: Bool, reason: String?) {
            self.active = active
            self.reason = reason
        }
    }
}

/// The token a page of a session presents to the workstation agent's localhost bridge. The agent derives it from its
/// own session token; the server from the stored hash of that token, for the browser sessions that joined it. Neither
/// side sends it to the other, and it changes with every sign-in.
public enum BridgeToken {
    public static func derive(sessionToken: String) -> String {
        derive(sessionTokenHash: SHA256.hash(data: Array(sessionToken.utf8)).map { byteHex($0) }.joined())
    }

    public static func derive(sessionTokenHash: String) -> String {
        SHA256.hash(data: Array("carddesk-bridge:\(sessionTokenHash)".utf8)).map { byteHex($0) }.joined()
    }

    static func byteHex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}

/// The JSON the web page exchanges with the agent's localhost bridge.
public enum BridgeAPI {
    /// `GET /v1/status`: no secrets, no state change.
    public struct Status: Codable, Sendable {
        public enum Phase: String, Codable, Sendable {
            /// No card in the reader.
            case noCard
            /// A card is in; nobody has signed in with it yet.
            case awaitingPasscode
            /// Passcode accepted; the holder has several roles and has not picked one.
            case awaitingRole
            case signedIn
            /// Three wrong passcodes: the card must be unlocked first.
            case cardLocked
        }
        public let agent: String
        public let version: String
        public let phase: Phase
        public let cardSerial: String?
        public let triesLeft: Int?
        public let roles: [String]
        /// Only in the answer to a passcode typed in the page: the single-use secret with which that page (and no
        /// other local program) may join the agent's session.
        public var handoverSecret: String?
        public init(agent: String = "carddesk", version: String, phase: Phase, cardSerial: String?, triesLeft: Int?, roles: [String]) {
            self.agent = agent
            self.version = version
            self.phase = phase
            self.cardSerial = cardSerial
            self.triesLeft = triesLeft
            self.roles = roles
        }
    }

    public struct Passcode: Codable, Sendable {
        public let passcode: String
        public init(passcode: String) { self.passcode = passcode }
    }

    /// `POST /v1/handover`: the page proves it may join the agent's session with the secret the agent gave it (in the
    /// URL fragment of the browser it opened, or in the answer to a passcode typed in the page), or with the passcode.
    public struct HandoverRequest: Codable, Sendable {
        public let secret: String?
        public let passcode: String?
        public init(secret: String? = nil, passcode: String? = nil) {
            self.secret = secret
            self.passcode = passcode
        }
    }

    /// `POST /v1/contacts/consent` (bridge token): the passcode checked on the card, which then signs
    /// `ContactChangeMessage` for this address; the answer is the signature for the page to send to the server.
    public struct ContactConsent: Codable, Sendable {
        public let passcode: String
        public let challenge: String
        public let channel: ContactChannel
        public let address: String
        public init(passcode: String, challenge: String, channel: ContactChannel, address: String) {
            self.passcode = passcode
            self.challenge = challenge
            self.channel = channel
            self.address = address
        }
    }

    public struct ContactSignature: Codable, Sendable {
        public let signature: Data
        public init(signature: Data) { self.signature = signature }
    }

    public struct ChooseRole: Codable, Sendable {
        public let number: Int
        public init(number: Int) { self.number = number }
    }

    public struct UnlockChannel: Codable, Sendable {
        public let channel: ContactChannel
        public init(channel: ContactChannel) { self.channel = channel }
    }

    public struct UnlockCode: Codable, Sendable {
        public let code: String
        public init(code: String) { self.code = code }
    }

    /// A new passcode typed twice (checked on the workstation only).
    public struct NewPasscode: Codable, Sendable {
        public let passcode: String
        public let repeated: String
        public init(passcode: String, repeated: String) {
            self.passcode = passcode
            self.repeated = repeated
        }
    }

    public struct ChangePasscode: Codable, Sendable {
        public let current: String
        public let passcode: String
        public let repeated: String
        public init(current: String, passcode: String, repeated: String) {
            self.current = current
            self.passcode = passcode
            self.repeated = repeated
        }
    }

    /// The progress of a renewal the page started (`GET /v1/renewal`).
    public struct RenewalProgress: Codable, Sendable {
        public enum State: String, Codable, Sendable { case idle, running, succeeded, failed }
        public struct Item: Codable, Sendable {
            public let profile: CertificateProfileKind
            /// Pending, Generating key, Issuing, Writing, Done.
            public let stage: String
            /// 0 (pending) to 4 (done).
            public let step: Int
            public init(profile: CertificateProfileKind, stage: String, step: Int) {
                self.profile = profile
                self.stage = stage
                self.step = step
            }
        }
        public let state: State
        public let items: [Item]
        public let message: String?
        public let errorCode: String?
        public init(state: State, items: [Item], message: String?, errorCode: String?) {
            self.state = state
            self.items = items
            self.message = message
            self.errorCode = errorCode
        }
    }

    /// Issuing the blank card in the RA desk's second reader to a person (`POST /v1/subject/issue`).
    public struct IssueCard: Codable, Sendable {
        public let userID: String
        /// The new card's passcode, typed twice by its holder; both nil: issued locked.
        public let passcode: String?
        public let repeated: String?
        public init(userID: String, passcode: String?, repeated: String?) {
            self.userID = userID
            self.passcode = passcode
            self.repeated = repeated
        }
    }

    /// The card in the RA desk's second reader (`GET /v1/subject`): the card holder's, not the RA's own.
    public struct SubjectCard: Codable, Sendable {
        /// Nil when the second reader is empty (or the agent watches no second reader: `reader` nil too).
        public let cardSerial: String?
        public let reader: String?
        public let triesLeft: Int?
        /// Three wrong passcodes: it needs unlocking.
        public let locked: Bool
        /// Its PUK is blocked too: it can never be unlocked (clear or replace it).
        public let blocked: Bool
        /// A blank card (never issued): an RA may issue it to someone.
        public let blank: Bool
        public init(cardSerial: String?, reader: String?, triesLeft: Int?, locked: Bool, blocked: Bool, blank: Bool = false) {
            self.blank = blank
            self.cardSerial = cardSerial
            self.reader = reader
            self.triesLeft = triesLeft
            self.locked = locked
            self.blocked = blocked
        }
    }
}
