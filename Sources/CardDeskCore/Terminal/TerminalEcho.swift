import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns the terminal's echo off while a passcode is typed (the agent waiting for one, `PasscodePrompt`), and back
/// on afterwards, so that a passcode never shows on the screen (nor in a terminal's scrollback). Only when standard input is a
/// terminal; piped input (scripts, tests) is left alone. Ctrl-C or a SIGTERM while echo is off restore it first.
public enum TerminalEcho {
    private static let saved = Mutex<termios?>(nil)
    private static let signalSources = Mutex<[any DispatchSourceSignal]>([])

    @Sendable public static func hide(_ hidden: Bool) {
        guard isatty(0) == 1 else { return }
        installRestoreOnSignals()
        saved.withLock { saved in
            if hidden {
                guard saved == nil else { return }
                var original = termios()
                guard tcgetattr(0, &original) == 0 else { return }
                var silent = original
                silent.c_lflag &= ~tcflag_t(ECHO)
                // Enter still moves to the next line, so the answer that follows starts on a line of its own.
                silent.c_lflag |= tcflag_t(ECHONL)
                if tcsetattr(0, TCSANOW, &silent) == 0 { saved = original }
            } else if var original = saved {
                tcsetattr(0, TCSANOW, &original)
                saved = nil
            }
        }
    }

    /// On SIGINT or SIGTERM: the terminal as it was, then the usual exit status for that signal.
    private static func installRestoreOnSignals() {
        signalSources.withLock { sources in
            guard sources.isEmpty else { return }
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    hide(false)
                    exit(128 + number)
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
