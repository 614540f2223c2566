public import CardDeskCore
public import CardDeskStore
public import CertificateAuthority
public import Logging
public import ServiceLifecycle

/// Sends what the outbox holds: due messages in order, each opened (its body is sealed), sent, then marked sent
/// (the body wiped) or failed with a back-off (1 s, 2 s, 4 s … up to a minute). A relay that is down delays
/// messages and loses none; a request never waits for a relay.
public struct OutboxWorker: Service {
    let store: any OutboxStore
    let masterKey: MasterKey
    let senders: MessageSenders
    let clock: any WallClock
    let logger: Logger
    let interval: Duration

    public init(store: any OutboxStore, masterKey: MasterKey, senders: MessageSenders, clock: any WallClock, logger: Logger, interval: Duration = .milliseconds(250)) {
        self.store = store
        self.masterKey = masterKey
        self.senders = senders
        self.clock = clock
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                _ = try await sendDue()
            } catch {
                logger.warning("Outbox pass failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// One pass: returns how many messages were sent.
    public func sendDue() async throws -> Int {
        var sent = 0
        for message in try await store.dueMessages(now: clock.now(), limit: 20) {
            guard let sender = senders.sender(for: message.channel) else {
                try await store.markFailed(id: message.id, error: "no \(message.channel.spoken) sender is configured", nextAttemptAt: clock.now().adding(seconds: 60))
                logger.warning("No sender configured for a queued message", metadata: ["channel": "\(message.channel.rawValue)", "message": "\(message.id)"])
                continue
            }
            // Several server instances may share the outbox: only the one that claims a message sends it.
            guard try await store.claimMessage(message, leaseUntil: clock.now().adding(seconds: 120)) else { continue }
            do {
                let body = String(decoding: try masterKey.open(message.bodySealed, label: "outbox \(message.id)"), as: UTF8.self)
                try await sender.send(to: message.recipient, subject: message.subject, body: body)
                try await store.markSent(id: message.id, at: clock.now())
                sent += 1
                logger.info("Message sent", metadata: ["channel": "\(message.channel.rawValue)", "message": "\(message.id)"])
            } catch {
                let delay = OutboxMessage.backoff(afterAttempts: message.attempts)
                try await store.markFailed(id: message.id, error: "\(error)", nextAttemptAt: clock.now().adding(seconds: delay))
                logger.warning("Message not sent yet; will retry", metadata: [
                    "channel": "\(message.channel.rawValue)", "message": "\(message.id)", "error": "\(error)", "retryInSeconds": "\(delay)",
                ])
            }
        }
        return sent
    }
}
