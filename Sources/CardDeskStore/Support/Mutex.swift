import Synchronization

/// `Synchronization.Mutex` is non-copyable; this box lets escaping `@Sendable` closures share one.
final class Mutex<Value: Sendable>: Sendable {
    private let storage: Synchronization.Mutex<Value>

    init(_ value: Value) { storage = .init(value) }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try storage.withLock { try body(&$0) }
    }
}
