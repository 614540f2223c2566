import CardDeskAPI
import CardDeskCore
import Foundation
import Hummingbird

/// Turns a `CardDeskError` into an HTTP response with a status that fits, the person-readable reason, and the
/// error code (so the agent can show the same message and exit status the server meant):
/// `{"error": {"code": "renewalNotOpen", "message": "Renewal is not available yet: it opens on …"}}`.
struct CardDeskErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as CardDeskError {
            let body = try JSONEncoder().encode(APIErrorBody(error: .init(code: error.code.name, message: error.reason)))
            var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
            if let seconds = error.retryAfterSeconds { headers[.retryAfter] = String(max(1, seconds)) }
            return Response(
                status: Self.status(for: error.code),
                headers: headers,
                body: .init(byteBuffer: ByteBuffer(bytes: body))
            )
        }
    }

    static func status(for code: CardDeskError.Code) -> HTTPResponse.Status {
        HTTPResponse.Status(code: code.httpStatus)
    }
}
