import CardDeskAPI
import CardDeskCore
import Foundation

/// The pages: sign in, home, renewal, logged out, help.
enum Pages {
    /// Not signed in: the compatibility check, then sign-in through the agent (join its session, or passcode and role).
    static func signIn(settings: PageSettings, operation: String?) -> String {
        let intro = operation == "selfRenewSmartcard"
            ? "<p>Sign in with your smartcard to renew its certificates.</p>"
            : "<p>Sign in with your smartcard.</p>"
        return HTML.page(.init(title: "Sign in", page: "signin", settings: settings), main: """
            \(intro)
            \(HTML.compatibilityPanel)
            <section id="signin-card" class="step" hidden>
            <p id="signin-status" role="status"></p>
            </section>
            <form id="signin-passcode" class="step" hidden>
            <label for="passcode">Passcode</label>
            <input id="passcode" name="passcode" type="password" inputmode="numeric" minlength="6" maxlength="8" required>
            <button type="submit">Sign in</button>
            <p id="signin-error" class="error" role="alert"></p>
            <p><a href="/unlock" id="forgotten">I have forgotten my passcode</a></p>
            </form>
            <form id="signin-role" class="step" hidden>
            <fieldset><legend>Choose the role to work in</legend><div id="roles"></div></fieldset>
            <button type="submit">Continue</button>
            </form>
            """)
    }

    static func home(_ frame: HTML.Frame, session: SessionView, contacts: String = "") -> String {
        var main = HTML.compatibilityPanel
        if session.renewal.renewalAvailable {
            let earliest = session.certificates.map(\.notAfter).min()
            main += """
                <div class="banner" role="region" aria-label="Certificates expiring">
                <p>Your smartcard certificates expire\(earliest.map { " on \($0.dateDescription), in \(HTML.days(until: $0)) days" } ?? " soon").</p>
                <p><a class="button" href="/?operation=selfRenewSmartcard">Renew your certificates now</a></p>
                </div>
                """
        }
        main += """
            <dl class="account">
            <dt>Name</dt><dd id="name">\(HTML.escape(session.name))</dd>
            <dt>User ID</dt><dd>\(HTML.escape(session.userID))</dd>
            <dt>Organisation</dt><dd>\(HTML.escape(session.organisation))</dd>
            <dt>Role in use</dt><dd id="role">\(HTML.escape(session.role ?? "none chosen"))</dd>
            </dl>
            <h2>Certificates on your smartcard</h2>
            \(certificateTable(session))
            <p>\(HTML.escape(session.renewal.message))</p>
            \(contacts)
            """
        return HTML.page(frame, main: main)
    }

    static func certificateTable(_ session: SessionView) -> String {
        let rows = session.certificates.map { certificate in
            """
            <tr data-profile="\(certificate.profile.rawValue)"><th scope="row">\(HTML.profileName(certificate.profile))</th>\
            <td class="expiry">\(certificate.notAfter.dateDescription)</td><td class="days">\(HTML.days(until: certificate.notAfter))</td>\
            <td class="serial">\(HTML.escape(certificate.serial))</td></tr>
            """
        }.joined(separator: "\n")
        return """
            <table id="certificates">
            <caption>Each certificate, when it expires and how many days are left</caption>
            <thead><tr><th scope="col">Certificate</th><th scope="col">Expires</th><th scope="col">Days left</th><th scope="col">Serial number</th></tr></thead>
            <tbody>
            \(rows)
            </tbody>
            </table>
            """
    }

    /// `/?operation=selfRenewSmartcard`.
    static func renewal(_ frame: HTML.Frame, session: SessionView) -> String {
        var main = HTML.compatibilityPanel + certificateTable(session)
        let status = session.renewal
        let expired = session.certificates.contains { $0.notAfter.millisecondsSince1970 < Int64(Date().timeIntervalSince1970 * 1000) }
        if expired {
            main += """
                <div class="problem" id="renewal-expired"><h2>Your certificates have expired</h2>
                <p>Expired certificates cannot be renewed online. Go to your Registration Authority: \(HTML.escape(frame.settings.contacts.registrationAuthority)).</p></div>
                """
        } else if !status.renewalAvailable {
            main += """
                <div class="notice" id="renewal-not-open"><h2>Renewal is not available yet</h2>
                <p>\(HTML.escape(status.message))</p>
                \(status.opensOn.map { "<p>Renewal opens on <strong id=\"opens-on\">\($0.dateDescription)</strong>, 90 days before your certificates expire.</p>" } ?? "")
                <p><a href="/">Back to your account</a></p></div>
                """
        } else {
            let rows = CertificateProfileKind.allCases.filter { profile in session.certificates.contains { $0.profile == profile } }.map { profile in
                """
                <tr data-profile="\(profile.rawValue)"><th scope="row">\(HTML.profileName(profile))</th>\
                <td class="stage">Pending</td><td><progress class="bar" max="4" value="0" aria-label="\(HTML.profileName(profile)) progress">0 of 4</progress></td></tr>
                """
            }.joined(separator: "\n")
            main += """
                <form id="renew-choice" class="step" hidden>
                <fieldset><legend>What would you like to do?</legend>
                <div class="choice"><input type="radio" id="operation-renew" name="operation" value="renew" checked>
                <label for="operation-renew">Renew certificate</label></div>
                </fieldset>
                <button type="submit" id="continue">Continue</button>
                </form>
                <form id="renew-passcode" class="step" hidden>
                <label for="renew-passcode-input">Confirm your passcode</label>
                <input id="renew-passcode-input" type="password" inputmode="numeric" minlength="6" maxlength="8" required>
                <button type="submit" id="renew-confirm">Renew</button>
                <p id="renew-error" class="error" role="alert"></p>
                </form>
                <section id="renew-progress" class="step" hidden aria-live="polite">
                <h2>Renewal in progress</h2>
                <p>Keep your card in the reader.</p>
                <progress id="renew-overall" max="\(session.certificates.count * 4)" value="0" aria-label="Overall progress">0</progress>
                <table id="renew-steps"><caption>Each certificate's step: Pending, Generating key, Issuing, Writing, Done</caption>
                <thead><tr><th scope="col">Certificate</th><th scope="col">Step</th><th scope="col">Progress</th></tr></thead>
                <tbody>
                \(rows)
                </tbody></table>
                </section>
                <section id="renew-done" class="step" hidden>
                <p id="renew-success" class="success" role="status" tabindex="-1">Success: certificate renewed for smartcard</p>
                <p>Next: remove your card from the reader and log in again with your new certificates.</p>
                </section>
                """
        }
        return HTML.page(frame, main: main)
    }

    /// `/unlock`: self-service unlock (locked card or forgotten passcode), run by the script through the agent.
    static func unlock(settings: PageSettings) -> String {
        HTML.page(.init(title: "Unlock your smartcard", page: "unlock", settings: settings), main: """
            <p>Use this if your card is locked after three wrong passcodes, or you have forgotten your passcode. We send a
            6-digit code to the email address or mobile number registered for you; then you choose a new passcode. The new
            passcode is set on your card by this computer and is never sent to CardDesk.</p>
            \(HTML.compatibilityPanel)
            <form id="unlock-choose" class="step" hidden>
            <fieldset><legend>Where should we send your code?</legend><div id="unlock-contacts"></div></fieldset>
            <button type="submit">Send code</button>
            <p id="unlock-choose-error" class="error" role="alert"></p>
            </form>
            <form id="unlock-code" class="step" hidden>
            <p id="unlock-sent" role="status"></p>
            <label for="unlock-code-input">The 6-digit code</label>
            <input id="unlock-code-input" type="text" inputmode="numeric" maxlength="6" required>
            <button type="submit">Continue</button>
            <p id="unlock-code-error" class="error" role="alert"></p>
            </form>
            <form id="unlock-passcode" class="step" hidden>
            <p>Choose a new passcode: 6 to 8 digits, not one digit repeated and not a run such as 123456.</p>
            <label for="unlock-new">New passcode</label>
            <input id="unlock-new" type="password" inputmode="numeric" minlength="6" maxlength="8" required>
            <label for="unlock-again">New passcode again</label>
            <input id="unlock-again" type="password" inputmode="numeric" minlength="6" maxlength="8" required>
            <button type="submit">Set passcode</button>
            <p id="unlock-passcode-error" class="error" role="alert"></p>
            </form>
            <section id="unlock-done" class="step" hidden>
            <p id="unlock-success" class="success" role="status" tabindex="-1">Your smartcard is unlocked.</p>
            <p><a class="button" href="/">Sign in with your new passcode</a></p>
            </section>
            <section id="unlock-refused" class="step" hidden>
            <div class="problem" role="alert"><p id="unlock-refused-text"></p></div>
            <p><a href="/help">Help and contacts</a></p>
            </section>
            """)
    }

    /// `/passcode`: change the passcode, knowing the current one (signed in; done by the agent on the card).
    static func changePasscode(_ frame: HTML.Frame) -> String {
        HTML.page(frame, main: """
            \(HTML.compatibilityPanel)
            <form id="change-passcode" class="step" hidden>
            <label for="change-current">Current passcode</label>
            <input id="change-current" type="password" inputmode="numeric" minlength="6" maxlength="8" required>
            <label for="change-new">New passcode</label>
            <input id="change-new" type="password" inputmode="numeric" minlength="6" maxlength="8" required>
            <label for="change-again">New passcode again</label>
            <input id="change-again" type="password" inputmode="numeric" minlength="6" maxlength="8" required>
            <button type="submit">Change passcode</button>
            <p id="change-error" class="error" role="alert"></p>
            </form>
            <section id="change-done" class="step" hidden>
            <p id="change-success" class="success" role="status" tabindex="-1">Your passcode has been changed.</p>
            <p><a href="/">Back to your account</a></p>
            </section>
            """)
    }

    /// The contact details part of the home page: what is registered, and a form to add or change an address.
    static func contacts(_ contacts: ContactDetails?, csrf: String, challenge: String, pending: UnlockAPI.CodeSent?, message: String?, error: String?) -> String {
        func shown(_ address: String?, _ confirmed: Bool) -> String {
            guard let address else { return "none" }
            return HTML.escape(address) + (confirmed ? "" : " (not confirmed)")
        }
        var html = """
            <h2 id="contacts-heading">Contact details for unlocking your card</h2>
            <p>If your card locks or you forget your passcode, we send a code here so you can unlock it yourself.</p>
            <dl class="account">
            <dt>Email</dt><dd id="contact-email">\(shown(contacts?.email, contacts?.emailConfirmed ?? false))</dd>
            <dt>Mobile</dt><dd id="contact-mobile">\(shown(contacts?.mobile, contacts?.mobileConfirmed ?? false))</dd>
            </dl>
            """
        if let message { html += "<p id=\"contacts-message\" class=\"success\" role=\"status\">\(HTML.escape(message))</p>" }
        if let error { html += "<p id=\"contacts-error\" class=\"error\" role=\"alert\">\(HTML.escape(error))</p>" }
        if let pending {
            html += """
                <form method="post" action="/contacts/confirm" id="contacts-confirm">
                <input type="hidden" name="csrf" value="\(csrf)"><input type="hidden" name="id" value="\(HTML.escape(pending.unlockID))">
                <label for="contacts-code">The 6-digit code sent by \(pending.channel.spoken) to \(HTML.escape(pending.sentTo))</label>
                <input id="contacts-code" name="code" type="text" inputmode="numeric" maxlength="6" required>
                <button type="submit">Confirm</button>
                </form>
                """
        } else {
            html += """
                <form method="post" action="/contacts" id="contacts-add">
                <input type="hidden" name="csrf" value="\(csrf)">
                <input type="hidden" name="challenge" value="\(HTML.escape(challenge))">
                <input type="hidden" name="signature" value="">
                <fieldset><legend>Add or change</legend>
                <div class="choice"><input type="radio" id="contacts-channel-email" name="channel" value="email" checked>
                <label for="contacts-channel-email">Email address</label></div>
                <div class="choice"><input type="radio" id="contacts-channel-sms" name="channel" value="sms">
                <label for="contacts-channel-sms">Mobile number</label></div>
                </fieldset>
                <label for="contacts-address">Address or number</label>
                <input id="contacts-address" name="address" type="text" autocomplete="email" required>
                <label for="contacts-passcode">Your smartcard passcode, to confirm the change</label>
                <input id="contacts-passcode" type="password" inputmode="numeric" autocomplete="off" minlength="6" maxlength="8">
                <button type="submit">Send a code to confirm it</button>
                </form>
                """
        }
        return html + "<p><a href=\"/passcode\" id=\"change-passcode-link\">Change your passcode</a></p>"
    }

    static func loggedOut(settings: PageSettings, reason: String?) -> String {
        let explanation: String = switch reason {
        case "card removed": "Your smartcard was removed from the reader."
        case "logged out": "You logged out."
        case "idle timeout": "There was no activity for 15 minutes."
        // Only the reasons CardDesk gives: a link cannot make this page show words of an attacker's choosing.
        default: "Your session has ended."
        }
        return HTML.page(.init(title: "You have been logged out", page: "logged-out", settings: settings), main: """
            <p id="logout-reason">\(explanation)</p>
            <p><a class="button" href="/">Sign in again</a></p>
            """)
    }

    static func help(settings: PageSettings) -> String {
        HTML.page(.init(title: "Help", page: "help", settings: settings), main: """
            <h2>Who to contact</h2>
            <dl class="contacts">
            <dt>IT support</dt><dd id="contact-it">\(HTML.escape(settings.contacts.itPhone))</dd>
            <dt>Service desk</dt><dd id="contact-desk">\(HTML.escape(settings.contacts.serviceDesk))</dd>
            <dt>Registration Authority</dt><dd id="contact-ra">\(HTML.escape(settings.contacts.registrationAuthority))</dd>
            </dl>
            <h2>Common problems</h2>
            <ul>
            <li>The page says the CardDesk agent is not running: start it (<code>carddesk agent --reader DIR --server URL</code>) or ask IT support.</li>
            <li>Your card is locked after three wrong passcodes: unlock it with self-service unlock, or go to your Registration Authority.</li>
            <li>Your certificates have expired: only your Registration Authority can renew them.</li>
            <li>Renewal is offered in the last 90 days before your certificates expire.</li>
            </ul>
            <p><a href="/">Back</a></p>
            """)
    }

    /// A page for a request that failed: what happened and what to do, never a blank page.
    static func problem(settings: PageSettings, title: String, message: String) -> String {
        HTML.page(.init(title: title, page: "problem", settings: settings), main: """
            <div class="problem" role="alert"><p>\(HTML.escape(message))</p></div>
            <p><a href="/">Back to the start</a> · <a href="/help">Help</a></p>
            """)
    }
}
