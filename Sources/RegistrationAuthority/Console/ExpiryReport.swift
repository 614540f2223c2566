public import CardDeskCore
public import CardDeskStore

/// The certificates of one organisation falling due, week by week (issue 13: the RA's planning view).
public struct ExpiryReport: Sendable {
    public struct Week: Sendable, Hashable {
        /// The week's first day (midnight UTC); it runs seven days.
        public let start: Timestamp
        public let count: Int
    }

    public let organisation: String
    public let weeks: [Week]
    /// Every certificate in the weeks, soonest first.
    public let certificates: [CertificateFallingDue]

    /// Groups `certificates` into `weekCount` weeks from the day of `now` (UTC).
    public init(organisation: String, now: Timestamp, weekCount: Int, certificates: [CertificateFallingDue]) {
        let day: Int64 = 86_400_000
        let first = now.millisecondsSince1970 - now.millisecondsSince1970 % day
        var counts = [Int](repeating: 0, count: weekCount)
        for certificate in certificates {
            let index = Int((certificate.notAfter.millisecondsSince1970 - first) / (7 * day))
            if counts.indices.contains(index) { counts[index] += 1 }
        }
        self.organisation = organisation
        self.weeks = counts.enumerated().map { Week(start: Timestamp(millisecondsSince1970: first + Int64($0.offset) * 7 * day), count: $0.element) }
        self.certificates = certificates
    }

    /// The first moment after the report's last week.
    static func end(now: Timestamp, weekCount: Int) -> Timestamp {
        let day: Int64 = 86_400_000
        return Timestamp(millisecondsSince1970: now.millisecondsSince1970 - now.millisecondsSince1970 % day + Int64(weekCount) * 7 * day)
    }
}

extension RAConsole {
    /// The desk's organisation's certificates falling due in the next `weeks` weeks (26 by default). Any RA role may
    /// see its own organisation's.
    public func expiryReport(_ desk: Desk, weeks: Int = 26) async throws -> ExpiryReport {
        let now = clock.now()
        let start = Timestamp(millisecondsSince1970: now.millisecondsSince1970 - now.millisecondsSince1970 % 86_400_000)
        let due = try await directory.certificatesFallingDue(organisation: desk.organisation, from: max(start, now), to: ExpiryReport.end(now: now, weekCount: weeks))
        return ExpiryReport(organisation: desk.organisation, now: now, weekCount: weeks, certificates: due)
    }
}
