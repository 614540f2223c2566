public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
public import Logging
public import ServiceLifecycle

/// Housekeeping beside the web app: every minute, expired challenges (sign-in and renewal challenges nobody used)
/// and old rate-limit windows are deleted, so unauthenticated requests leave nothing behind for long.
public struct MaintenanceWorker: Service {
    let store: any MaintenanceStore
    let clock: any WallClock
    let logger: Logger
    let interval: Duration

    public init(store: any MaintenanceStore, clock: any WallClock, logger: Logger, interval: Duration = .seconds(60)) {
        self.store = store
        self.clock = clock
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                let removed = try await store.purgeExpired(now: clock.now())
                if removed > 0 { logger.debug("Purged expired rows", metadata: ["rows": "\(removed)"]) }
            } catch {
                logger.warning("Maintenance pass failed", metadata: ["error": "\(error)"])
            }
            // The wait ends at once on a graceful stop (SIGTERM), not after the interval.
            try? await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
        }
    }
}
