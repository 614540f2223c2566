public import Hummingbird
public import Logging

/// Builds the CardDesk HTTP application. The server executable and the tests build the same app.
public func buildApplication(
    services: WebServices,
    configuration: ApplicationConfiguration,
    logger: Logger,
    onServerRunning: @escaping @Sendable (_ port: Int?) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(services: services),
        configuration: configuration,
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port) },
        logger: logger
    )
}

/// Throws, saying where it looked, when the pages' templates (package resources beside the executable) cannot be read.
public func checkPageTemplates() throws {
    try PageViews.check()
}

/// The routes, one file per concern: health, PKI downloads, CRL, OCSP, renewal and sign-in API, the pages.
public func buildRouter(services: WebServices) -> Router<WebContext> {
    let router = Router(context: WebContext.self)
    router.add(middleware: ForwardedClientMiddleware(trusted: services.trustedProxies))
    router.add(middleware: LogRequestsMiddleware(.info))
    router.add(middleware: SecurityHeadersMiddleware(bridgePort: services.pages.bridgePort))
    router.add(middleware: CardDeskErrorMiddleware())
    HealthRoutes(store: services.store).register(on: router)
    PKIRoutes(authority: services.authority).register(on: router)
    OCSPRoutes(responder: services.ocsp, limiter: services.limiter, clock: services.authority.clock).register(on: router)
    RenewalRoutes(engine: services.renewal, limiter: services.limiter).register(on: router)
    LoginRoutes(login: services.login, presence: services.presence, limiter: services.limiter).register(on: router)
    UnlockRoutes(unlock: services.unlock, limiter: services.limiter).register(on: router)
    EnrolmentRoutes(enrolment: services.enrolment, limiter: services.limiter).register(on: router)
    let pages = PageRoutes(login: services.login, unlock: services.unlock, settings: services.pages, limiter: services.limiter)
    pages.register(on: router)
    RAConsoleRoutes(pages: pages, console: services.raConsole).register(on: router)
    RADeskRoutes(login: services.login, console: services.raConsole, limiter: services.limiter).register(on: router)
    // The pages' scripts and stylesheet, as files: ETag and Last-Modified, checked again on every use (no-cache), so
    // a new release's files are taken at once and an unchanged file costs a 304.
    router.add(middleware: FileMiddleware(
        PageViews.staticFolder, urlBasePath: "/assets",
        cacheControl: .init([(.textJavascript, [.noCache]), (.textCss, [.noCache])])
    ))
    return router
}
