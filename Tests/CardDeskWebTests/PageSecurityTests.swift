import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The pages' security headers, cookies and CSRF checks, through the real router.
@Suite("Pages: CSP, cookies, CSRF")
struct PageSecurityTests {
    @Test("Every page has a CSP without inline script; the sign-in page sets an HttpOnly, SameSite=Strict login cookie")
    func headersAndCookies() async throws {
        try await RoutesTests.withApp { _, client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                let csp = try #require(response.headers[.contentSecurityPolicy])
                #expect(csp.contains("script-src 'self'"))
                #expect(!csp.contains("unsafe-inline"))
                #expect(csp.contains("connect-src 'self' http://127.0.0.1:43490"))
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
                #expect(response.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
                let cookie = try #require(response.headers[.setCookie])
                #expect(cookie.hasPrefix("carddesk_login="))
                #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
                let html = String(buffer: response.body)
                #expect(html.contains("<noscript>") && html.contains("JavaScript is turned off"))
                #expect(!html.contains("<script>"), "no inline script")
                #expect(html.contains("Checking your browser and the CardDesk agent"), "never a blank page")
            }
            try await client.execute(uri: "/help", method: .get) { response in
                #expect(String(buffer: response.body).contains("your local Registration Authority"))
            }
        }
    }

    @Test("Pages are templates that escape every value: markup in a configured contact is shown as text, in the page and its attributes")
    func templatesEscape() async throws {
        let hostile = #"<img src=x onerror=alert(1)> "quoted" & 'single'"#
        try await RoutesTests.withApp(flags: ["help.it.phone": hostile, "pki.organisation": "<b>Trust</b>"]) { _, client in
            for uri in ["/help", "/", "/unlock", "/logged-out?reason=%3Cscript%3E"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .ok, "\(uri)")
                    let html = String(buffer: response.body)
                    #expect(!html.contains("<img src=x"), "\(uri): markup from the settings went into the page")
                    #expect(!html.contains("<b>Trust</b>"), "\(uri)")
                    #expect(!html.contains("<script>"), "\(uri)")
                    #expect(html.contains("&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &amp; &#39;single&#39;"), "\(uri)")
                    #expect(html.contains(#"data-contact-it="&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot;"#), "\(uri)")
                    #expect(html.contains("&lt;b&gt;Trust&lt;/b&gt; smartcard services"), "\(uri)")
                }
            }
            // The sign-in page carries its CSRF token in the page, the same as the HttpOnly cookie's.
            try await client.execute(uri: "/?operation=selfRenewSmartcard", method: .get) { response in
                let cookie = try #require(response.headers[.setCookie])
                let token = try #require(cookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last)
                let html = String(buffer: response.body)
                #expect(html.contains(#"data-page="signin" "#))
                #expect(html.contains(#"data-csrf="\#(token)""#))
                #expect(html.contains("Sign in with your smartcard to renew its certificates."))
            }
        }
    }

    @Test("Scripts and stylesheet are served from the package's files, with ETag and no-cache, and 304 when unchanged")
    func staticFiles() async throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/CardDeskWeb/Pages/Static")
        try await RoutesTests.withApp { _, client in
            for (name, type) in [("carddesk.js", "text/javascript"), ("check.js", "text/javascript"), ("carddesk.css", "text/css")] {
                let source = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
                let etag = try await client.execute(uri: "/assets/\(name)", method: .get) { response in
                    #expect(response.status == .ok, "\(name)")
                    #expect(response.headers[.contentType]?.hasPrefix(type) == true, "\(name): \(response.headers[.contentType] ?? "")")
                    #expect(response.headers[.cacheControl] == "no-cache", "\(name)")
                    #expect(String(buffer: response.body) == source, "\(name) is the file in the package")
                    #expect(response.headers[.contentSecurityPolicy] != nil, "\(name): the security headers too")
                    return try #require(response.headers[.eTag])
                }
                try await client.execute(uri: "/assets/\(name)", method: .get, headers: [.ifNoneMatch: etag]) { response in
                    #expect(response.status == .notModified, "\(name)")
                }
            }
            try await client.execute(uri: "/assets/../Templates/layout.mustache", method: .get) { response in
                // FileMiddleware refuses a path that climbs out of its folder (400); the template is not served.
                #expect(response.status == .badRequest || response.status == .notFound, "nothing outside the static folder")
                #expect(!String(buffer: response.body).contains("{{"))
            }
        }
    }

    @Test("Under https the cookies carry the __Host- prefix (Secure, Path=/, no Domain), so no other host can plant them")
    func hostPrefixedCookiesUnderHTTPS() async throws {
        try await RoutesTests.withApp(publicURL: "https://pki.test") { _, client in
            try await client.execute(uri: "/", method: .get) { response in
                let cookie = try #require(response.headers[.setCookie])
                #expect(cookie.hasPrefix("__Host-carddesk_login="), "\(cookie)")
                #expect(cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.lowercased().contains("domain="))
            }
            // A handover with only the unprefixed cookie (as a plain-http page or a sibling host could set) is refused.
            try await client.execute(
                uri: "/login/handover", method: .post,
                headers: [.contentType: "application/json", .cookie: "carddesk_login=abc", HTTPField.Name("X-CSRF-Token")!: "abc"],
                body: ByteBuffer(string: #"{"code":"x"}"#)
            ) { response in
                #expect(response.status == .forbidden)
            }
        }
    }

    @Test("State-changing requests without the CSRF token are refused with a clear 403")
    func csrf() async throws {
        try await RoutesTests.withApp { _, client in
            try await client.execute(uri: "/logout", method: .post, headers: [.cookie: "carddesk_session=abc"]) { response in
                #expect(response.status == .forbidden)
                #expect(String(buffer: response.body).contains("did not carry the page's security token (CSRF)"))
            }
            try await client.execute(
                uri: "/login/handover", method: .post, headers: [.contentType: "application/json", .cookie: "carddesk_login=abc"],
                body: ByteBuffer(string: #"{"code":"a.b"}"#)
            ) { response in
                #expect(response.status == .forbidden)
            }
            // With the token but a code that was never issued: refused as a sign-in failure, not a crash.
            try await client.execute(
                uri: "/login/handover", method: .post,
                headers: [.contentType: "application/json", .cookie: "carddesk_login=abc", HTTPField.Name("X-CSRF-Token")!: "abc"],
                body: ByteBuffer(string: #"{"code":"a.b"}"#)
            ) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("expired or was already used"))
            }
            try await client.execute(uri: "/session/status", method: .get, headers: [.cookie: "carddesk_session=nothing"]) { response in
                #expect(String(buffer: response.body).contains(#""active":false"#))
            }
        }
    }

    @Test("Unlock failures get their own HTTP status (not 500): an unknown card 404, a code for no request 400")
    func unlockStatuses() async throws {
        try await RoutesTests.withApp { _, client in
            try await client.execute(
                uri: "/api/v1/unlock/options", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"cardSerial":"CDNOSUCHCARD"}"#)
            ) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(
                uri: "/api/v1/unlock/no-such-request/verification", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"code":"123456"}"#)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("wrongCode"))
            }
        }
    }
}
