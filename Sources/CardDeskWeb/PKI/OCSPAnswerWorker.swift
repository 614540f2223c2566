public import CertificateAuthority
import Foundation
public import Logging
public import ServiceLifecycle

/// Keeps the OCSP responder's pre-signed answers true and fresh, in every server instance: follows revocations made
/// by any process (dropping the answers it holds in memory), and signs again the stored answers that are due.
public struct OCSPAnswerWorker: Service {
    let responder: OCSPResponder
    let logger: Logger
    let refreshInterval: Duration

    public init(responder: OCSPResponder, logger: Logger, refreshInterval: Duration = .seconds(30)) {
        self.responder = responder
        self.logger = logger
        self.refreshInterval = refreshInterval
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await responder.followRevocations(logger: logger) }
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            let signed = try await responder.refreshDue()
                            if signed > 0 { logger.debug("Signed OCSP answers again", metadata: ["answers": "\(signed)"]) }
                        } catch {
                            logger.warning("Refreshing OCSP answers failed; they are signed on demand meanwhile", metadata: ["error": "\(error)"])
                        }
                        try? await Task.sleep(for: refreshInterval)
                    }
                }
            }
        }
    }
}
