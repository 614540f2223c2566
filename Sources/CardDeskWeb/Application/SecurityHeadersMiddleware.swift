import Hummingbird
import HTTPTypes

// Made once (a field name is checked and lower-cased when made; a generic type cannot keep it as a static).
private let frameOptions = HTTPField.Name("X-Frame-Options")!
private let referrerPolicy = HTTPField.Name("Referrer-Policy")!

/// Headers on every response: a Content-Security-Policy with no inline script (scripts come from this origin only;
/// the page may connect to this origin and to the workstation agent's localhost bridge), no framing, no MIME
/// sniffing, no referrer.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let contentSecurityPolicy: String

    init(bridgePort: Int) {
        contentSecurityPolicy = [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self' http://127.0.0.1:\(bridgePort) http://localhost:\(bridgePort)",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ].joined(separator: "; ")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.contentSecurityPolicy] = contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[frameOptions] = "DENY"
        response.headers[referrerPolicy] = "no-referrer"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}
