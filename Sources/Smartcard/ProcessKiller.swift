import CardDeskCore
import Foundation
import Synchronization

/// Kills this process at an armed `CrashPoint` (tests of interrupted renewals), counting passes per point name.
public final class ProcessKiller: Sendable {
    private let point: CrashPoint?
    private let counts = Mutex<[String: Int]>([:])

    public init(environmentVariable: String) {
        self.point = CrashPoint(environmentValue: ProcessInfo.processInfo.environment[environmentVariable])
    }

    /// Call just before (`after: false`) and just after (`after: true`) the step named `name`.
    public func checkpoint(_ name: String, after: Bool) {
        guard let point, point.name == name, point.after == after else { return }
        let count = counts.withLock { counts in
            counts[name, default: 0] += 1
            return counts[name]!
        }
        if point.matches(name, after: after, count: count) {
            kill(getpid(), SIGKILL)
        }
    }
}
