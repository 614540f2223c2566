/// A point in time with millisecond precision, stored as milliseconds since 1970 (UTC) in every database.
///
/// Core stays free of Foundation's clock: time is always passed in, so tests can fix it.
public struct Timestamp: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let millisecondsSince1970: Int64

    public init(millisecondsSince1970: Int64) {
        self.millisecondsSince1970 = millisecondsSince1970
    }

    public init(secondsSince1970: Int64) {
        self.millisecondsSince1970 = secondsSince1970 * 1000
    }

    public var secondsSince1970: Int64 { millisecondsSince1970 / 1000 }

    public func adding(seconds: Int64) -> Timestamp {
        Timestamp(millisecondsSince1970: millisecondsSince1970 + seconds * 1000)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.millisecondsSince1970 < rhs.millisecondsSince1970 }

    /// ISO 8601 in UTC, for example `2026-12-29T10:15:00Z`.
    public var description: String {
        let civil = CivilDate(daysSince1970: floorDiv(secondsSince1970, 86_400))
        let secondOfDay = secondsSince1970 - floorDiv(secondsSince1970, 86_400) * 86_400
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(civil.year, 4))-\(pad(civil.month, 2))-\(pad(civil.day, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    /// The calendar date in UTC, `YYYY-MM-DD`.
    public var dateDescription: String { String(description.prefix(10)) }

    /// The time of day in UTC, `HH:MM`.
    public var timeOfDayDescription: String { String(description.dropFirst(11).prefix(5)) }
}

extension Timestamp {
    /// Midnight UTC of a calendar date written `YYYY-MM-DD` (as a date field sends it); nil for anything else.
    public init?(date text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
              let year = Int64(parts[0]), let month = Int64(parts[1]), let day = Int64(parts[2]),
              (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        // Howard Hinnant's days_from_civil, then checked by converting back (30 February is refused).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let civil = CivilDate(daysSince1970: days)
        guard civil.year == year, civil.month == month, civil.day == day else { return nil }
        self.init(secondsSince1970: days * 86_400)
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    a >= 0 ? a / b : -((-a + b - 1) / b)
}

/// Proleptic Gregorian date from a day count (Howard Hinnant's civil_from_days).
private struct CivilDate {
    let year: Int64
    let month: Int64
    let day: Int64

    init(daysSince1970 days: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.year = yoe + era * 400 + (m <= 2 ? 1 : 0)
        self.month = m
        self.day = d
    }
}
