import Foundation

/// The date format of HTTP headers (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`. Written out with the
/// C library's `gmtime_r`: it is on every cacheable OCSP and CRL answer, where a DateFormatter per call would cost
/// more than the rest of the headers.
public enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func string(_ time: Timestamp) -> String {
        var seconds = time_t(time.millisecondsSince1970 / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
