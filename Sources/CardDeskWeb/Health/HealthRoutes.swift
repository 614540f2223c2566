import CardDeskStore
import Hummingbird

/// `GET /health`: 200 when the server can reach its database, 503 otherwise. For load balancers and operators.
struct HealthRoutes {
    let store: SQLStore

    struct Health: ResponseEncodable {
        let status: String
        let database: String
        let reason: String?
    }

    func register(on router: Router<WebContext>) {
        router.get("/health") { _, _ -> EditedResponse<Health> in
            let database: String = switch store.location {
            case .sqlite: "sqlite"
            case .postgres: "postgresql"
            }
            do {
                try await store.ping()
                return EditedResponse(response: Health(status: "ok", database: database, reason: nil))
            } catch {
                return EditedResponse(
                    status: .serviceUnavailable,
                    response: Health(status: "unavailable", database: database, reason: "The database cannot be reached.")
                )
            }
        }
    }
}
