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
        let first = Self.firstDay(now)
        var counts = [Int](repeating: 0, count: weekCount)
        for certificate in certificates {
            let index = Int((certificate.notAfter.millisecondsSince1970 - first.millisecondsSince1970) / Self.week)
            if counts.indices.contains(index) { counts[index] += 1 }
        }
        self.organisation = organisation
        self.weeks = counts.enumerated().map { Week(start: Self.start(ofWeek: $0.offset, from: first), count: $0.element) }
        self.certificates = certificates
    }

    static let week: Int64 = 7 * 86_400_000

    /// Midnight UTC of `now`'s day: the first week starts there.
    static func firstDay(_ now: Timestamp) -> Timestamp {
        Timestamp(millisecondsSince1970: now.millisecondsSince1970 - now.millisecondsSince1970 % 86_400_000)
    }

    static func start(ofWeek index: Int, from first: Timestamp) -> Timestamp {
        Timestamp(millisecondsSince1970: first.millisecondsSince1970 + Int64(index) * week)
    }
}

extension RAConsole {
    /// The desk's organisation's certificates falling due in the next `weeks` weeks (26 by default). Any RA role may
    /// see its own organisation's.
    public func expiryReport(_ desk: Desk, weeks: Int = 26) async throws -> ExpiryReport {
        let now = clock.now()
        let end = ExpiryReport.start(ofWeek: weeks, from: ExpiryReport.firstDay(now))
        let due = try await directory.certificatesFallingDue(organisation: desk.organisation, from: now, to: end)
        return ExpiryReport(organisation: desk.organisation, now: now, weekCount: weeks, certificates: due)
    }
}
