public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
import Foundation

/// Emails card holders before their certificates expire (by default 90, 30 and 7 days before), through the outbox.
/// Each reminder goes once per card, threshold and expiry, whatever the restarts and however many server instances
/// run it (the store records it in the transaction that queues the message). A renewed card's certificates expire
/// years later, so it is not reminded; a card mid-way through a threshold gets only that threshold's reminder (the
/// ones missed while the server was down are not sent late).
public struct ExpiryReminders: Sendable {
    let store: any ReminderStore
    let masterKey: MasterKey
    let clock: any WallClock
    /// Days before expiry, largest first.
    public let days: [Int]
    /// The renewal page (`…/?operation=selfRenewSmartcard`) named in the emails.
    let renewalURL: String

    public init(store: any ReminderStore, masterKey: MasterKey, clock: any WallClock, days: [Int], publicURL: String) {
        self.store = store
        self.masterKey = masterKey
        self.clock = clock
        self.days = Array(Set(days.filter { $0 > 0 })).sorted(by: >)
        self.renewalURL = publicURL.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/?operation=selfRenewSmartcard"
    }

    /// Queues the reminders due now; returns how many.
    @discardableResult
    public func run(limit: Int = 10_000) async throws -> Int {
        guard let widest = days.first else { return 0 }
        let now = clock.now()
        var queued = 0
        for card in try await store.cardsExpiring(after: now, until: now.adding(seconds: Int64(widest) * 86_400), limit: limit) {
            guard let email = card.email else { continue }
            let left = card.notAfter.millisecondsSince1970 - now.millisecondsSince1970
            // The nearest threshold the card has passed: 25 days left with 90, 30, 7 → the 30-day reminder.
            guard let threshold = days.last(where: { left <= Int64($0) * 86_400_000 }) else { continue }
            let id = SecureRandom.uuid()
            // To the nearest day: a certificate's expiry is kept to the second (X.509), so "20 days" may be a fraction of a
            // second either side of it.
            let daysLeft = max(1, Int((left + 43_200_000) / 86_400_000))
            let body = """
                Dear \(card.givenName),

                The certificates on your smartcard \(card.cardSerial) expire on \(card.notAfter.dateDescription), in \(daysLeft) day\(daysLeft == 1 ? "" : "s").
                Renew them yourself before then: sign in with your card and passcode at \(renewalURL)
                (or answer Yes when the CardDesk agent offers the renewal). It takes about a minute.

                Once they have expired, only your Registration Authority can renew them.
                """
            let message = OutboxMessage(
                id: id, channel: .email, recipient: email, subject: "Your smartcard certificates expire on \(card.notAfter.dateDescription)",
                bodySealed: try masterKey.seal(Array(body.utf8), label: "outbox \(id)"), createdAt: now, nextAttemptAt: now
            )
            let audit = AuditEvent(
                action: .expiryReminder, actor: "system", subject: "card:\(card.cardSerial)",
                details: "expiry reminder \(threshold) days: certificates expire \(card.notAfter.dateDescription)", time: now
            )
            if try await store.recordReminder(card: card.cardSerial, days: threshold, notAfter: card.notAfter, message: message, audit: audit) {
                queued += 1
            }
        }
        return queued
    }
}
