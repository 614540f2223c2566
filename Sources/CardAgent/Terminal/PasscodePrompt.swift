import CardDeskCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads the passcode: without echo on a terminal, or one line from standard input when it is not a terminal
/// (scripts and tests). The passcode goes to the card only.
public enum PasscodePrompt {
    public static func read(prompt: String = "Passcode: ") throws -> String {
        if isatty(0) == 1 {
            FileHandle.standardError.write(Data(prompt.utf8))
            var original = termios()
            tcgetattr(0, &original)
            var silent = original
            silent.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSAFLUSH, &silent)
            defer {
                tcsetattr(0, TCSAFLUSH, &original)
                FileHandle.standardError.write(Data("\n".utf8))
            }
            return try line()
        }
        return try line()
    }

    private static func line() throws -> String {
        guard let text = Swift.readLine(strippingNewline: true) else {
            throw CardDeskError(.invalidInput, "No passcode was given.")
        }
        return text.trimmingCharacters(in: .whitespaces)
    }
}
