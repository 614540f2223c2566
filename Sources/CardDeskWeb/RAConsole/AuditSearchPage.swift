import CardDeskCore
import CardDeskStore
import Foundation
import Hummingbird
import HummingbirdCore
import RegistrationAuthority

/// The audit search's fields as the form sends them (GET), kept as typed so the page shows them back.
struct AuditSearchForm {
    var person: String
    var card: String
    var actor: String
    var action: String
    var from: String
    var to: String
    var before: Int64?

    init(_ query: FlatDictionary<Substring, Substring>) {
        func field(_ name: String) -> String { query.get(name).map { String($0.prefix(64)).trimmingCharacters(in: .whitespaces) } ?? "" }
        person = field("person")
        card = field("card")
        actor = field("actor")
        action = field("action")
        from = field("from")
        to = field("to")
        before = query.get("before").flatMap { Int64($0) }
    }

    /// The filter, or a refusal naming the field that is wrong.
    func filter() throws(CardDeskError) -> AuditFilter {
        func user(_ text: String, _ label: String) throws(CardDeskError) -> UserID? {
            guard !text.isEmpty else { return nil }
            guard let id = try? UserID(text) else { throw CardDeskError(.invalidInput, "The \(label) must be a 12-digit user ID (got \"\(text)\").") }
            return id
        }
        func date(_ text: String, _ label: String) throws(CardDeskError) -> Timestamp? {
            guard !text.isEmpty else { return nil }
            guard let day = Timestamp(date: text) else { throw CardDeskError(.invalidInput, "The \(label) date must be written YYYY-MM-DD (got \"\(text)\").") }
            return day
        }
        let to = try date(self.to, "to")
        return AuditFilter(
            person: try user(person, "person"), card: card.isEmpty ? nil : card, actor: try user(actor, "RA"),
            action: action.isEmpty ? nil : action, from: try date(from, "from"),
            // "To" includes its whole day.
            to: to?.adding(seconds: 86_400)
        )
    }

    /// The query string of this search (without `before`).
    var query: String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return [("person", person), ("card", card), ("actor", actor), ("action", action), ("from", from), ("to", to)]
            .filter { !$0.1.isEmpty }
            .map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
            .joined(separator: "&")
    }
}

/// An audit entry as the console's tables show it (the audit search, a person's history).
struct AuditRow {
    let sequence: Int64
    let time: String
    let action: String
    let actor: String
    let subject: String
    let outcome: String
    let details: String

    init(_ entry: AuditEntry) {
        sequence = entry.sequence
        time = entry.event.time.description
        action = entry.event.action.rawValue
        actor = entry.event.actor
        subject = entry.event.subject
        outcome = entry.event.outcome.rawValue
        details = entry.event.details
    }
}

/// `ra-audit.mustache`.
struct AuditSearchPage {
    struct ActionChoice {
        let value: String
        let selected: Bool
    }

    let frame: PageFrame
    let desk: String
    let form: AuditSearchForm
    let actions: [ActionChoice]
    let rows: [AuditRow]
    let nothing: Bool
    let chainIntact: Bool
    let chainText: String
    let olderLink: String?
    let csvLink: String

    init(frame: PageFrame, desk: RAConsole.Desk, form: AuditSearchForm, page: RAConsole.AuditPage) {
        self.frame = frame
        self.desk = desk.description
        self.form = form
        actions = AuditEvent.Action.all.map { ActionChoice(value: $0.rawValue, selected: $0.rawValue == form.action) }
        rows = page.entries.map(AuditRow.init)
        nothing = rows.isEmpty
        switch page.chain {
        case .intact(let entries):
            chainIntact = true
            chainText = "The audit chain verifies: all \(entries) entries intact (checked \(page.checkedAt))."
        case .broken(let sequence, let reason):
            chainIntact = false
            chainText = "The audit chain is BROKEN at entry \(sequence): \(reason). Entries from there on cannot be trusted; tell your RA Manager and the service's operators."
        }
        let query = form.query
        olderLink = page.next.map { "/ra/audit?" + (query.isEmpty ? "" : query + "&") + "before=\($0)" }
        csvLink = "/ra/audit.csv" + (query.isEmpty ? "" : "?" + query)
    }
}

/// Audit entries as CSV.
enum AuditCSV {
    static func text(_ entries: [AuditEntry]) -> String {
        CSV.text(header: ["sequence", "time", "action", "actor", "subject", "outcome", "details"], rows: entries.map {
            [String($0.sequence), $0.event.time.description, $0.event.action.rawValue, $0.event.actor, $0.event.subject, $0.event.outcome.rawValue, $0.event.details]
        })
    }
}
