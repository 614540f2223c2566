/// An error that a person can act on.
///
/// Like swift-certificates' `CertificateError`: an extensible code, a reason written for the person who reads it
/// (a clinician, an RA agent or an operator: what happened and what to do next), and the place it was made.
public struct CardDeskError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Callers switch on the code, never on the reason text.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// The process exit status a command uses for this failure, so scripts can tell failures apart.
        public let exitStatus: Int32

        public init(_ name: String, exitStatus: Int32) {
            self.name = name
            self.exitStatus = exitStatus
        }

        public var description: String { name }

        public static let invalidInput = Code("invalidInput", exitStatus: 64)
        public static let unknownUser = Code("unknownUser", exitStatus: 65)
        public static let userExists = Code("userExists", exitStatus: 66)
        public static let userNotActive = Code("userNotActive", exitStatus: 67)
        public static let malformedRequest = Code("malformedRequest", exitStatus: 68)
        public static let badProofOfPossession = Code("badProofOfPossession", exitStatus: 69)
        public static let unsupportedKey = Code("unsupportedKey", exitStatus: 70)
        public static let unknownCertificate = Code("unknownCertificate", exitStatus: 71)
        public static let alreadyRevoked = Code("alreadyRevoked", exitStatus: 72)
        public static let corruptDataDirectory = Code("corruptDataDirectory", exitStatus: 73)
        public static let wrongMasterKey = Code("wrongMasterKey", exitStatus: 74)
        public static let storageUnavailable = Code("storageUnavailable", exitStatus: 75)
        public static let auditChainBroken = Code("auditChainBroken", exitStatus: 76)
        public static let configuration = Code("configuration", exitStatus: 78)
        public static let internalFailure = Code("internalFailure", exitStatus: 70 + 9)
        // Cards and renewal.
        public static let wrongPasscode = Code("wrongPasscode", exitStatus: 80)
        public static let cardLocked = Code("cardLocked", exitStatus: 81)
        public static let cardBlocked = Code("cardBlocked", exitStatus: 82)
        public static let cardRemoved = Code("cardRemoved", exitStatus: 83)
        public static let corruptCard = Code("corruptCard", exitStatus: 84)
        public static let notAuthorised = Code("notAuthorised", exitStatus: 85)
        public static let passcodeRequired = Code("passcodeRequired", exitStatus: 86)
        public static let renewalNotOpen = Code("renewalNotOpen", exitStatus: 87)
        public static let certificatesExpired = Code("certificatesExpired", exitStatus: 88)
        public static let unknownCard = Code("unknownCard", exitStatus: 89)
        public static let serverUnreachable = Code("serverUnreachable", exitStatus: 90)
        public static let authenticationFailed = Code("authenticationFailed", exitStatus: 91)
        public static let renewalConflict = Code("renewalConflict", exitStatus: 92)
        // Self-service unlock and passcodes.
        public static let codeExpired = Code("codeExpired", exitStatus: 93)
        public static let codeAlreadyUsed = Code("codeAlreadyUsed", exitStatus: 94)
        public static let codeVoided = Code("codeVoided", exitStatus: 95)
        public static let wrongCode = Code("wrongCode", exitStatus: 96)
        public static let tooManyCodes = Code("tooManyCodes", exitStatus: 97)
        public static let emailDomainNotAllowed = Code("emailDomainNotAllowed", exitStatus: 98)
        public static let cardCancelled = Code("cardCancelled", exitStatus: 99)
        public static let noContactDetails = Code("noContactDetails", exitStatus: 100)
        public static let weakPasscode = Code("weakPasscode", exitStatus: 101)
        /// A rate limit: too many requests from one address or for one card in a short time.
        public static let tooManyRequests = Code("tooManyRequests", exitStatus: 102)
        /// The card cannot do what was asked (a PIV card without a YubiKey extension, say).
        public static let unsupportedCard = Code("unsupportedCard", exitStatus: 103)
        /// The same step is already running (a second request while the first is busy with the card or the server).
        public static let stepInProgress = Code("stepInProgress", exitStatus: 104)
        /// The HSM (PKCS#11 token) holding the CA keys is gone or failing for now.
        public static let hsmUnavailable = Code("hsmUnavailable", exitStatus: 105)
        /// The card holder renewed this card themselves as many times in a row as the policy allows: their RA renews it.
        public static let raRenewalRequired = Code("raRenewalRequired", exitStatus: 106)

        /// Every code, so a client can turn a server's `code` back into the same `Code`.
        public static let all: [Code] = [
            .invalidInput, .unknownUser, .userExists, .userNotActive, .malformedRequest, .badProofOfPossession, .unsupportedKey,
            .unknownCertificate, .alreadyRevoked, .corruptDataDirectory, .wrongMasterKey, .storageUnavailable, .auditChainBroken,
            .configuration, .internalFailure, .wrongPasscode, .cardLocked, .cardBlocked, .cardRemoved, .corruptCard, .notAuthorised,
            .passcodeRequired, .renewalNotOpen, .certificatesExpired, .unknownCard, .serverUnreachable, .authenticationFailed,
            .renewalConflict, .codeExpired, .codeAlreadyUsed, .codeVoided, .wrongCode, .tooManyCodes, .emailDomainNotAllowed,
            .cardCancelled, .noContactDetails, .weakPasscode, .tooManyRequests, .unsupportedCard, .stepInProgress, .hsmUnavailable,
            .raRenewalRequired,
        ]

        public static func named(_ name: String) -> Code? { all.first { $0.name == name } }
    }

    public let code: Code
    /// A sentence for a person: what happened and, where there is one, what to do next.
    public let reason: String
    public let file: String
    public let line: UInt
    /// For a refusal that passes with time (rate limits): how many seconds to wait (HTTP `Retry-After`).
    public var retryAfterSeconds: Int?

    public init(_ code: Code, _ reason: String, retryAfterSeconds: Int? = nil, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.retryAfterSeconds = retryAfterSeconds
        self.file = file
        self.line = line
    }

    public var description: String { reason }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code && lhs.reason == rhs.reason }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(reason)
    }
}
