import CardDeskCore
import CardDeskStore
import RegistrationAuthority

/// `ra-expiry.mustache`: the chart's bars and labels are worked out here, so the template only places them.
struct ExpiryReportPage {
    struct Bar {
        let x: Int
        let y: Int
        let height: Int
        let count: Int
        let hasCount: Bool
        let labelY: Int
        let week: String
        let label: String?
    }

    let frame: PageFrame
    let desk: String
    let organisation: String
    /// One per week: drawn in the chart, and listed in the table.
    let bars: [Bar]
    let summary: String
    let barWidth = Self.barWidth
    let chartWidth: Int
    let chartHeight: Int
    let baseline: Int
    let axisLabelY: Int

    static let barWidth = 24
    static let gap = 6
    static let plotHeight = 180
    static let top = 20

    init(frame: PageFrame, desk: RAConsole.Desk, report: ExpiryReport) {
        self.frame = frame
        self.desk = desk.description
        organisation = report.organisation
        let total = report.certificates.count
        let peak = max(1, report.weeks.map(\.count).max() ?? 0)
        baseline = Self.top + Self.plotHeight
        axisLabelY = Self.top + Self.plotHeight + 16
        chartWidth = report.weeks.count * (Self.barWidth + Self.gap)
        chartHeight = baseline + 30
        bars = report.weeks.enumerated().map { index, week in
            let height = week.count * Self.plotHeight / peak
            let x = index * (Self.barWidth + Self.gap)
            return Bar(
                x: x, y: Self.top + Self.plotHeight - height, height: height, count: week.count, hasCount: week.count > 0,
                labelY: Self.top + Self.plotHeight - height - 4, week: week.start.dateDescription,
                label: index % 4 == 0 ? String(week.start.dateDescription.dropFirst(5)) : nil
            )
        }
        let busiest = report.weeks.max { $0.count < $1.count }
        summary = "\(total) certificate\(total == 1 ? "" : "s") of \(report.organisation) fall due in the next \(report.weeks.count) weeks"
            + (busiest.map { $0.count > 0 ? "; the most, \($0.count), in the week of \($0.start.dateDescription)" : "" } ?? "") + "."
    }
}

/// The expiry report's list as CSV.
enum ExpiryReportCSV {
    static func text(_ report: ExpiryReport) -> String {
        CSV.text(header: ["user_id", "given_name", "family_name", "certificate", "serial", "card", "expires"], rows: report.certificates.map {
            [$0.userID.rawValue, $0.givenName, $0.familyName, $0.profile.rawValue, $0.serial.hex, $0.cardSerial ?? "", $0.notAfter.description]
        })
    }
}

/// CSV (RFC 4180) as the console's downloads write it. A cell that a spreadsheet would run as a formula is prefixed
/// with an apostrophe.
enum CSV {
    static func text(header: [String], rows: [[String]]) -> String {
        ([header] + rows).map { $0.map(cell).joined(separator: ",") + "\r\n" }.joined()
    }

    static func cell(_ text: String) -> String {
        var value = text
        if let first = value.first, "=+-@\t\r".contains(first) { value = "'" + value }
        guard value.contains(where: { ",\"\r\n".contains($0) }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
