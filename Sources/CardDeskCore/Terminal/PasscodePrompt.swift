#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a passcode: without echo on a terminal, or one line from standard input when it is not a terminal
/// (scripts and tests), or the first line of a file. Never from the command line, where every user of the computer
/// can read it (`ps`, `/proc/PID/cmdline`).
public enum PasscodePrompt {
    public static func read(prompt: String = "Passcode: ") throws(CardDeskError) -> String {
        guard isatty(0) == 1 else { return try line() }
        writeError(prompt)
        // Echo off (Enter still shows as a new line), and back on however the read ends.
        TerminalEcho.hide(true)
        defer { TerminalEcho.hide(false) }
        return try line()
    }

    /// The first line of `path`; `-` is standard input (as `read`).
    public static func read(file path: String) throws(CardDeskError) -> String {
        if path == "-" { return try read() }
        guard let handle = fopen(path, "r") else {
            throw CardDeskError(.invalidInput, "Cannot read the passcode file \(path): \(String(cString: strerror(errno))).")
        }
        defer { fclose(handle) }
        return try line(from: handle, source: "the passcode file \(path)")
    }

    private static func writeError(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    private static func line(from handle: UnsafeMutablePointer<FILE>? = nil, source: String = "standard input") throws(CardDeskError) -> String {
        let text: String?
        if let handle {
            var buffer = [CChar](repeating: 0, count: 256)
            text = fgets(&buffer, Int32(buffer.count), handle) != nil
                ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
        } else {
            text = Swift.readLine(strippingNewline: true)
        }
        guard let text else { throw CardDeskError(.invalidInput, "No passcode was given on \(source).") }
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        return String(text.drop(while: blank).reversed().drop(while: blank).reversed())
    }
}
