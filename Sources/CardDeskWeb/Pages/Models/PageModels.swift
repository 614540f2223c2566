import CardDeskAPI
import CardDeskCore
import Foundation

// Each page is a model here and a view of the same name in `Templates/` (swift-mustache, which HTML-escapes every
// `{{value}}`). Models hold display-ready text only: the templates have no logic beyond sections.

/// What the layout (`layout.mustache`) shows on every page.
struct PageFrame {
    struct Account {
        let name: String
        let userID: String
        let role: String?
    }

    var title: String
    /// `signin`, `home`, `renew`, `unlock`, `passcode`, `logged-out`, `help`: tells the script what to do on this page.
    var page: String
    let organisation: String
    let bridge: String
    let contactIT: String
    let contactRA: String
    let serviceDesk: String
    /// The page's CSRF token (the sign-in token before sign-in, the session's after).
    var csrf: String?
    var bridgeToken: String?
    var account: Account?

    init(title: String, page: String, settings: PageSettings, session: SessionView? = nil, csrf: String? = nil) {
        self.title = title
        self.page = page
        self.organisation = settings.organisation
        self.bridge = "http://127.0.0.1:\(settings.bridgePort)"
        self.contactIT = settings.contacts.itPhone
        self.contactRA = settings.contacts.registrationAuthority
        self.serviceDesk = settings.contacts.serviceDesk
        self.csrf = csrf
        self.account = session.map { Account(name: $0.name, userID: $0.userID, role: $0.role) }
    }
}

/// A certificate as the tables show it.
struct CertificateRow {
    let profile: String
    let name: String
    let expires: String
    let daysLeft: Int
    let serial: String

    static func rows(_ session: SessionView, now: Date = Date()) -> [CertificateRow] {
        session.certificates.map {
            CertificateRow(
                profile: $0.profile.rawValue, name: profileName($0.profile), expires: $0.notAfter.dateDescription,
                daysLeft: days(until: $0.notAfter, now: now), serial: $0.serial
            )
        }
    }

    static func days(until timestamp: Timestamp, now: Date) -> Int {
        Int((Double(timestamp.millisecondsSince1970) / 1000 - now.timeIntervalSince1970) / 86_400)
    }

    static func profileName(_ profile: CertificateProfileKind) -> String {
        switch profile {
        case .authentication: "Authentication certificate"
        case .signing: "Signing certificate"
        }
    }
}

/// `sign-in.mustache`: not signed in; the compatibility check, then sign-in through the agent.
struct SignInPage {
    let frame: PageFrame
    let forRenewal: Bool
}

/// `contacts.mustache`: the contact addresses for self-service unlock, and a form to add or change one.
struct ContactsPart {
    struct Pending {
        let unlockID: String
        let channel: String
        let sentTo: String
    }

    let email: String
    let mobile: String
    let csrf: String
    let challenge: String
    let pending: Pending?
    let message: String?
    let error: String?

    init(_ contacts: ContactDetails?, csrf: String, challenge: String, pending: UnlockAPI.CodeSent?, message: String?, error: String?) {
        func shown(_ address: String?, _ confirmed: Bool) -> String {
            guard let address else { return "none" }
            return address + (confirmed ? "" : " (not confirmed)")
        }
        self.email = shown(contacts?.email, contacts?.emailConfirmed ?? false)
        self.mobile = shown(contacts?.mobile, contacts?.mobileConfirmed ?? false)
        self.csrf = csrf
        self.challenge = challenge
        self.pending = pending.map { Pending(unlockID: $0.unlockID, channel: $0.channel.spoken, sentTo: $0.sentTo) }
        self.message = message
        self.error = error
    }
}

/// `home.mustache`: signed in; the account, its certificates, renewal when due, contact addresses.
struct HomePage {
    let frame: PageFrame
    /// "on 3 March 2027, in 40 days" when renewal is available.
    let renewalBanner: String?
    let name: String
    let userID: String
    let organisation: String
    let role: String
    let certificates: [CertificateRow]
    let renewalMessage: String
    let contacts: ContactsPart

    init(frame: PageFrame, session: SessionView, contacts: ContactsPart, now: Date = Date()) {
        self.frame = frame
        if session.renewal.renewalAvailable {
            let earliest = session.certificates.map(\.notAfter).min()
            renewalBanner = earliest.map { "on \($0.dateDescription), in \(CertificateRow.days(until: $0, now: now)) days" } ?? "soon"
        } else {
            renewalBanner = nil
        }
        name = session.name
        userID = session.userID
        organisation = session.organisation
        role = session.role ?? "none chosen"
        certificates = CertificateRow.rows(session, now: now)
        renewalMessage = session.renewal.message
        self.contacts = contacts
    }
}

/// `renewal.mustache`: `/?operation=selfRenewSmartcard`.
struct RenewalPage {
    struct NotOpen {
        let message: String
        let opensOn: String?
    }

    struct Step {
        let profile: String
        let name: String
    }

    let frame: PageFrame
    let certificates: [CertificateRow]
    let expired: Bool
    let notOpen: NotOpen?
    let available: Bool
    let steps: [Step]
    let progressMax: Int

    init(frame: PageFrame, session: SessionView, now: Date = Date()) {
        self.frame = frame
        certificates = CertificateRow.rows(session, now: now)
        expired = session.certificates.contains { $0.notAfter.millisecondsSince1970 < Int64(now.timeIntervalSince1970 * 1000) }
        let status = session.renewal
        notOpen = !expired && !status.renewalAvailable ? NotOpen(message: status.message, opensOn: status.opensOn?.dateDescription) : nil
        available = !expired && status.renewalAvailable
        steps = CertificateProfileKind.allCases.filter { profile in session.certificates.contains { $0.profile == profile } }.map {
            Step(profile: $0.rawValue, name: CertificateRow.profileName($0))
        }
        progressMax = session.certificates.count * 4
    }
}

/// `unlock.mustache`, `passcode.mustache` and `help.mustache`: the layout's fields only.
struct PlainPage {
    let frame: PageFrame
}

/// `logged-out.mustache`.
struct LoggedOutPage {
    let frame: PageFrame
    let explanation: String

    init(frame: PageFrame, reason: String?) {
        self.frame = frame
        explanation = switch reason {
        case "card removed": "Your smartcard was removed from the reader."
        case "logged out": "You logged out."
        case "idle timeout": "There was no activity for 15 minutes."
        // Only the reasons CardDesk gives: a link cannot make this page show words of an attacker's choosing.
        default: "Your session has ended."
        }
    }
}
