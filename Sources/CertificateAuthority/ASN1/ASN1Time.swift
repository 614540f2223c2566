import CardDeskCore
import Foundation
import SwiftASN1

/// RFC 5280's Time: UTCTime through 2049, GeneralizedTime from 2050 (section 4.1.2.5), always in UTC with seconds.
enum ASN1Time {
    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    static func components(_ time: Timestamp) -> DateComponents {
        calendar.dateComponents(
            [.year, .month, .day, .hour, .minute, .second],
            from: Date(timeIntervalSince1970: TimeInterval(time.secondsSince1970))
        )
    }

    /// Serialises `time` as RFC 5280 Time.
    static func serializeTime(_ time: Timestamp, into coder: inout DER.Serializer) throws {
        let parts = components(time)
        if let year = parts.year, year < 2050 {
            try coder.serialize(
                UTCTime(year: year, month: parts.month!, day: parts.day!, hours: parts.hour!, minutes: parts.minute!, seconds: parts.second!)
            )
        } else {
            try coder.serialize(generalizedTime(time))
        }
    }

    /// GeneralizedTime without fractional seconds, as RFC 5280 and RFC 6960 expect.
    static func generalizedTime(_ time: Timestamp) throws -> GeneralizedTime {
        let parts = components(time)
        return try GeneralizedTime(
            year: parts.year!, month: parts.month!, day: parts.day!,
            hours: parts.hour!, minutes: parts.minute!, seconds: parts.second!, fractionalSeconds: 0
        )
    }

    /// Reads RFC 5280 Time (either form) back into a timestamp.
    static func parseTime(_ node: ASN1Node) throws -> Timestamp {
        let parts: DateComponents
        switch node.identifier {
        case .utcTime:
            let time = try UTCTime(derEncoded: node)
            parts = DateComponents(year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes, second: time.seconds)
        case .generalizedTime:
            return try timestamp(try GeneralizedTime(derEncoded: node))
        default:
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
        return try timestamp(parts)
    }

    static func timestamp(_ time: GeneralizedTime) throws -> Timestamp {
        try timestamp(DateComponents(year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes, second: time.seconds))
    }

    private static func timestamp(_ parts: DateComponents) throws -> Timestamp {
        guard let date = calendar.date(from: parts) else { throw ASN1Error.invalidASN1Object(reason: "invalid date") }
        return Timestamp(secondsSince1970: Int64(date.timeIntervalSince1970))
    }
}

extension Timestamp {
    var date: Date { Date(timeIntervalSince1970: TimeInterval(millisecondsSince1970) / 1000) }

    init(_ date: Date) {
        self.init(millisecondsSince1970: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }
}
