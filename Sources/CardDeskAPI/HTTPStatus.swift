public import CardDeskCore

extension CardDeskError.Code {
    /// The HTTP status every CardDesk HTTP surface (the server's API and pages, the agent's localhost bridge) answers
    /// this failure with. One table, so a new code gets the same status everywhere.
    public var httpStatus: Int {
        switch self {
        case .invalidInput, .malformedRequest, .badProofOfPossession, .unsupportedKey, .weakPasscode, .wrongCode, .emailDomainNotAllowed: 400
        case .authenticationFailed, .wrongPasscode, .passcodeRequired: 401
        case .notAuthorised: 403
        case .unknownUser, .unknownCertificate, .unknownCard: 404
        case .alreadyRevoked, .userExists, .userNotActive, .renewalConflict, .stepInProgress, .renewalNotOpen, .certificatesExpired,
             .codeExpired, .codeAlreadyUsed, .codeVoided, .cardCancelled, .noContactDetails, .raRenewalRequired: 409
        case .cardLocked, .cardBlocked: 423
        case .tooManyCodes, .tooManyRequests: 429
        case .unsupportedCard: 422
        case .serverUnreachable: 502
        case .storageUnavailable, .hsmUnavailable: 503
        default: 500
        }
    }
}
