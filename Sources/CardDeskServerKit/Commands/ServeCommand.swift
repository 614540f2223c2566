import ArgumentParser
import CardDeskWeb
import CardDeskCore
import Foundation
import Hummingbird
public import Logging
import ServiceLifecycle

/// `carddesk-server serve [--port 8080] [--host 127.0.0.1] [--data DIR] [--database-url URL]`
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the CardDesk server (the default command).")

    @OptionGroup var store: StoreOptions

    @Option(help: "The port to listen on (default 8080; 0 picks a free one).")
    var port: Int?

    @Option(help: "The address to listen on (default 127.0.0.1).")
    var host: String?

    @Option(name: .customLong("agent-port"), help: "The port of the workstation agent's localhost bridge the pages talk to (default 43490).")
    var agentPort: Int?

    @Option(name: .customLong("smtp"), help: "The SMTP relay for one-time codes: smtp://[user:password@]host:port.")
    var smtp: String?

    @Option(name: .customLong("smtp-from"), help: "The sender address of the emails.")
    var smtpFrom: String?

    @Flag(name: .customLong("smtp-insecure"), help: "Send to an SMTP relay that does not offer STARTTLS (codes cross the network in clear: a relay on this machine or a trusted network only).")
    var smtpInsecure = false

    @Option(name: .customLong("allowed-email-domains"), help: "Email domains allowed for unlock codes, comma-separated (default nhs.net,nhs.uk).")
    var allowedEmailDomains: String?

    @Option(name: .customLong("sms-gateway"), help: "The HTTP gateway for text messages (POST {\"to\", \"text\"}).")
    var smsGateway: String?

    @Flag(inversion: .prefixedNo, help: "Create (once) a demo card holder and virtual card (default: only when run with no arguments).")
    var demo: Bool?

    func run() async throws {
        try await CommandSupport.reportingErrors {
            var flags = store.flags
            flags["http.port"] = port.map(String.init)
            flags["http.host"] = host
            flags["agent.bridge.port"] = agentPort.map(String.init)
            flags["smtp.url"] = smtp
            flags["smtp.from"] = smtpFrom
            if smtpInsecure { flags["smtp.insecure"] = "true" }
            flags["email.allowed.domains"] = allowedEmailDomains
            flags["sms.gateway.url"] = smsGateway
            let settings = try await ServerSettings.resolve(flags: flags, configFile: store.config)
            let logger = LoggingSetup.bootstrap(format: settings.logFormat, level: settings.logLevel)
            let instance = try await CardDeskInstance.open(settings, logger: logger, serving: true)
            let demoText: String? = demo ?? (CommandLine.arguments.count == 1)
                ? try await DemoCard.ensure(instance, serverURL: settings.publicURL) : nil
            try await CardDeskServer.run(instance, logger: logger, announce: demoText)
        }
    }
}

/// The server proper: the web app, the outbox worker and the maintenance worker on an opened instance, until SIGTERM
/// or SIGINT (graceful: open requests finish, then the store closes). `serve` runs it; so do test programs that open
/// the instance their own way.
public enum CardDeskServer {
    public static func run(_ instance: CardDeskInstance, logger: Logger, announce extra: String? = nil) async throws {
        let settings = instance.settings
        // Pages without their templates would each answer with an error: refuse to start instead.
        try checkPageTemplates()
        let outbox = try instance.outboxWorker(logger: logger)
        let app = buildApplication(
            services: instance.webServices,
            configuration: ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: "CardDesk"),
            logger: logger,
            onServerRunning: { port in
                let line = "CardDesk server listening on http://\(settings.host):\(port ?? settings.port) "
                    + "(data \(settings.dataDirectory.path), database \(settings.database), certificates name \(settings.publicURL))\n"
                FileHandle.standardOutput.write(Data((line + (extra.map { "\n" + $0 } ?? "")).utf8))
            }
        )
        do {
            let group = ServiceGroup(configuration: .init(
                services: [
                    .init(service: app), .init(service: outbox),
                    .init(service: MaintenanceWorker(
                        store: instance.store, enrolment: instance.enrolment, reminders: instance.expiryReminders, clock: instance.clock, logger: logger
                    )),
                    // Due answers are looked for four times per validity half (at least every 30 s).
                    .init(service: OCSPAnswerWorker(
                        responder: instance.ocsp, logger: logger, refreshInterval: .seconds(max(1, min(30, settings.ocspValidityMinutes * 60 / 4)))
                    )),
                ], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
            ))
            try await group.run()
        } catch {
            await instance.close()
            throw error
        }
        await instance.close()
        logger.info("CardDesk server stopped")
    }
}
