import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
public import RegistrationAuthority
public import Logging
public import ServiceLifecycle

/// Housekeeping beside the web app: every minute, expired challenges (sign-in and renewal challenges nobody used)
/// and old rate-limit windows are deleted, so unauthenticated requests leave nothing behind for long; and enrolments
/// abandoned past their token's expiry are ended (their certificates revoked); and the expiry reminders due are
/// queued in the outbox.
public struct MaintenanceWorker: Service {
    let store: any MaintenanceStore
    let enrolment: CardEnrolment?
    let reminders: ExpiryReminders?
    let clock: any WallClock
    let logger: Logger
    let interval: Duration

    public init(
        store: any MaintenanceStore, enrolment: CardEnrolment? = nil, reminders: ExpiryReminders? = nil, clock: any WallClock, logger: Logger,
        interval: Duration = .seconds(60)
    ) {
        self.store = store
        self.enrolment = enrolment
        self.reminders = reminders
        self.clock = clock
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                let removed = try await store.purgeExpired(now: clock.now())
                if removed > 0 { logger.debug("Purged expired rows", metadata: ["rows": "\(removed)"]) }
                if let ended = try await enrolment?.sweepAbandoned(), ended > 0 {
                    logger.notice("Ended abandoned enrolments: their cards cancelled, certificates revoked", metadata: ["enrolments": "\(ended)"])
                }
                if let queued = try await reminders?.run(), queued > 0 {
                    logger.info("Queued expiry reminders", metadata: ["reminders": "\(queued)"])
                }
            } catch {
                logger.warning("Maintenance pass failed", metadata: ["error": "\(error)"])
            }
            // The wait ends at once on a graceful stop (SIGTERM), not after the interval.
            try? await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
        }
    }
}
