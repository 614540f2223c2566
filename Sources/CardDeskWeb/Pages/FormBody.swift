import Foundation

/// `application/x-www-form-urlencoded` bodies of the plain forms (contact addresses, codes). A pure function of the
/// text, so the fuzzer can drive it without a server.
public enum FormBody {
    /// Name to value; `+` is a space, `%XX` a byte, a malformed escape makes the value empty. The last of repeated
    /// names wins; pairs without `=` are ignored.
    public static func fields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                .map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        return fields
    }

    /// Text as it goes into a page (the form's values and errors are echoed back): HTML-escaped.
    public static func escapedForPage(_ text: String) -> String {
        HTML.escape(text)
    }
}
