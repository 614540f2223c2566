import CardDeskCore
import Hummingbird

/// Turns a `CardDeskError` into an HTTP error with a status that fits and the person-readable reason.
struct CardDeskErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as CardDeskError {
            throw HTTPError(Self.status(for: error.code), message: error.reason)
        }
    }

    static func status(for code: CardDeskError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidInput, .malformedRequest, .badProofOfPossession, .unsupportedKey: .badRequest
        case .unknownUser, .unknownCertificate: .notFound
        case .alreadyRevoked, .userExists, .userNotActive: .conflict
        case .storageUnavailable: .serviceUnavailable
        default: .internalServerError
        }
    }
}
