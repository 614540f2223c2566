import CardDeskAPI
import CardDeskCore
import Foundation

/// Server-rendered HTML: escaping and the layout every page shares. No inline script or style (the CSP forbids
/// them); the two scripts come from `/assets`.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// What the layout needs from the request.
    struct Frame {
        var title: String
        /// `signin`, `home`, `renew`, `logged-out`, `help`: tells the script what to do on this page.
        var page: String
        var settings: PageSettings
        var session: SessionView? = nil
        var csrf: String? = nil
        var bridgeToken: String? = nil
    }

    static func page(_ frame: Frame, main: String) -> String {
        var data = [
            "data-page=\"\(escape(frame.page))\"",
            "data-bridge=\"http://127.0.0.1:\(frame.settings.bridgePort)\"",
            "data-contact-it=\"\(escape(frame.settings.contacts.itPhone))\"",
            "data-contact-ra=\"\(escape(frame.settings.contacts.registrationAuthority))\"",
        ]
        if let csrf = frame.csrf { data.append("data-csrf=\"\(escape(csrf))\"") }
        if let token = frame.bridgeToken { data.append("data-bridge-token=\"\(escape(token))\"") }
        let account: String
        if let session = frame.session {
            account = """
                <p class="who">Signed in as <strong>\(escape(session.name))</strong> (\(escape(session.userID)))\
                \(session.role.map { ", role <strong>\(escape($0))</strong>" } ?? "")</p>
                <form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="\(escape(frame.csrf ?? ""))">\
                <button type="submit">Log out</button></form>
                """
        } else {
            account = ""
        }
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(frame.title)) – \(escape(frame.settings.organisation)) smartcard services</title>
            <link rel="stylesheet" href="/assets/carddesk.css">
            <script src="/assets/check.js"></script>
            <script src="/assets/carddesk.js" defer></script>
            </head>
            <body \(data.joined(separator: " "))>
            <a class="skip" href="#main">Skip to main content</a>
            <header>
            <p class="brand"><a href="/">\(escape(frame.settings.organisation)) smartcard services</a></p>
            <nav aria-label="Account">\(account)<a href="/help">Help</a></nav>
            </header>
            <main id="main">
            <h1>\(escape(frame.title))</h1>
            <noscript>
            <div class="problem" id="problem-javascript">
            <h2>JavaScript is turned off</h2>
            <p>This page needs JavaScript to talk to your smartcard through the CardDesk agent on this computer.</p>
            <p><strong>To fix it:</strong> turn JavaScript on for this site (in Chrome or Edge: Settings, Privacy and security,
            Site settings, JavaScript, then add this site under "Allowed"), then reload the page.
            If your organisation manages this browser, call \(escape(frame.settings.contacts.itPhone)).</p>
            </div>
            </noscript>
            \(main)
            </main>
            <footer><p>Need help? IT: \(escape(frame.settings.contacts.itPhone)) · Service desk: \(escape(frame.settings.contacts.serviceDesk)) ·
            <a href="/help">All contacts</a></p></footer>
            </body>
            </html>
            """
    }

    /// The compatibility check's panel: filled in by the script; says what it is doing until then, so a page
    /// whose script never runs is not blank.
    static let compatibilityPanel = """
        <section id="compat" class="compat" aria-live="polite">
        <p id="compat-checking">Checking your browser and the CardDesk agent on this computer…</p>
        </section>
        """

    static func days(until timestamp: Timestamp, now: Date = Date()) -> Int {
        Int((Double(timestamp.millisecondsSince1970) / 1000 - now.timeIntervalSince1970) / 86_400)
    }

    static func profileName(_ profile: CertificateProfileKind) -> String {
        switch profile {
        case .authentication: "Authentication certificate"
        case .signing: "Signing certificate"
        }
    }
}
