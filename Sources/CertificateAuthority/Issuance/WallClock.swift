public import CardDeskCore
import Foundation

/// The seam for time: production reads the system clock, tests fix it.
public protocol WallClock: Sendable {
    func now() -> Timestamp
}

public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Timestamp { Timestamp(Date()) }
}

/// A clock that always says the same time, for tests and reproducible runs.
public struct FixedClock: WallClock {
    public let time: Timestamp
    public init(_ time: Timestamp) { self.time = time }
    public func now() -> Timestamp { time }
}
