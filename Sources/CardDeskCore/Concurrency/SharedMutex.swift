import Synchronization

/// `Synchronization.Mutex` is non-copyable; this box lets escaping `@Sendable` closures and copyable `Sendable`
/// structs (a service holding a cache) share one.
public final class SharedMutex<Value: Sendable>: Sendable {
    private let storage: Synchronization.Mutex<Value>

    public init(_ value: Value) { storage = .init(value) }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try storage.withLock { try body(&$0) }
    }
}
