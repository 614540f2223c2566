public import CardDeskCore

/// When self-renewal is offered: in the last `days` days before the earliest expiry of the card's certificates
/// (90 by default, as the national service does), and never once a certificate has expired.
public struct RenewalWindow: Hashable, Sendable {
    public let days: Int

    public init(days: Int = 90) {
        self.days = days
    }

    public enum Verdict: Hashable, Sendable {
        case open(closes: Timestamp)
        case opensOn(Timestamp)
        case expired(on: Timestamp)
    }

    public func verdict(earliestExpiry: Timestamp, now: Timestamp) -> Verdict {
        if earliestExpiry <= now { return .expired(on: earliestExpiry) }
        let opens = earliestExpiry.adding(seconds: -Int64(days) * 86_400)
        return now >= opens ? .open(closes: earliestExpiry) : .opensOn(opens)
    }

    /// The refusal a person reads when the window is not open.
    public func refusal(_ verdict: Verdict) -> CardDeskError? {
        switch verdict {
        case .open:
            return nil
        case .opensOn(let date):
            return CardDeskError(.renewalNotOpen, "Renewal is not available yet: it opens on \(date.dateDescription), \(days) days before your certificates expire.")
        case .expired(let date):
            return CardDeskError(.certificatesExpired, "Your certificates expired on \(date.dateDescription). Self-renewal is not possible: ask your Registration Authority to renew them.")
        }
    }
}
