import CardDeskCore
import CardDeskServerKit
import CardDeskStore
import Foundation
import Testing

/// Settings come in layers: flags > environment > configuration file > defaults.
@Suite("Settings")
struct SettingsTests {
    static func configFile(_ json: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-config-\(UUID().uuidString).json")
        try json.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test("Defaults: ./.carddesk, SQLite inside it, 127.0.0.1:8080, three-year certificates")
    func defaults() async throws {
        let settings = try await ServerSettings.resolve(flags: [:], environment: [:])
        #expect(settings.dataDirectory.path == URL(fileURLWithPath: "./.carddesk").standardizedFileURL.path)
        #expect(settings.database == .sqlite(path: settings.dataDirectory.appendingPathComponent("carddesk.sqlite").path))
        #expect(settings.host == "127.0.0.1")
        #expect(settings.port == 8080)
        #expect(settings.publicURL == "http://127.0.0.1:8080")
        #expect(settings.validityDays == 1095)
        #expect(settings.masterKeyBase64 == nil)
        #expect(settings.masterKeyFile.lastPathComponent == "master.key")
    }

    @Test("A flag beats the environment, which beats the file, which beats the default")
    func layering() async throws {
        let file = try Self.configFile(#"{"http": {"port": 9000, "host": "0.0.0.0"}, "certificates": {"validity": {"days": 730}}, "pki": {"organisation": "File Trust"}}"#)
        let fileOnly = try await ServerSettings.resolve(flags: [:], configFile: file, environment: [:])
        #expect(fileOnly.port == 9000)
        #expect(fileOnly.host == "0.0.0.0")
        #expect(fileOnly.validityDays == 730)
        #expect(fileOnly.organisation == "File Trust")

        let environment = ["CARDDESK_HTTP_PORT": "9100", "CARDDESK_PKI_ORGANISATION": "Env Trust"]
        let withEnvironment = try await ServerSettings.resolve(flags: [:], configFile: file, environment: environment)
        #expect(withEnvironment.port == 9100)
        #expect(withEnvironment.organisation == "Env Trust")
        #expect(withEnvironment.validityDays == 730)

        let withFlags = try await ServerSettings.resolve(flags: ["http.port": "9200"], configFile: file, environment: environment)
        #expect(withFlags.port == 9200)
        #expect(withFlags.publicURL == "http://0.0.0.0:9200")
        #expect(withFlags.organisation == "Env Trust")
    }

    @Test("The data directory's config.json is read when no file is named")
    func configInDataDirectory() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("carddesk-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try #"{"public": {"url": "https://carddesk.example.org"}}"#.write(to: data.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let settings = try await ServerSettings.resolve(flags: [:], environment: ["CARDDESK_DATA": data.path])
        #expect(settings.publicURL == "https://carddesk.example.org")
        #expect(settings.dataDirectory.path == data.standardizedFileURL.path)
    }

    @Test("Bad values are refused with the key and what is allowed")
    func badValues() async throws {
        let port = await #expect(throws: CardDeskError.self) {
            try await ServerSettings.resolve(flags: [:], environment: ["CARDDESK_HTTP_PORT": "eighty"])
        }
        #expect(port?.reason.contains("http.port") == true)
        let oid = await #expect(throws: CardDeskError.self) {
            try await ServerSettings.resolve(flags: ["certificates.policy.oid": "not.an.oid"], environment: [:])
        }
        #expect(oid?.code == .configuration)
        let database = await #expect(throws: CardDeskError.self) {
            try await ServerSettings.resolve(flags: ["database.url": "mysql://x"], environment: [:])
        }
        #expect(database?.reason.contains("postgres://") == true)
        let missingFile = await #expect(throws: CardDeskError.self) {
            try await ServerSettings.resolve(flags: [:], configFile: "/nonexistent/carddesk.json", environment: [:])
        }
        #expect(missingFile?.reason.contains("/nonexistent/carddesk.json") == true)
    }

    @Test("RA role codes: the defaults, one set by the environment, and two roles sharing a code refused")
    func raRoleCodes() async throws {
        #expect(try await ServerSettings.resolve(flags: [:], environment: [:]).raRoleCodes == .defaults)
        let configured = try await ServerSettings.resolve(flags: [:], environment: ["CARDDESK_RA_ROLE_AGENT": "S8000:G8000:R8003"])
        #expect(configured.raRoleCodes.code(for: .agent) == "S8000:G8000:R8003")
        #expect(configured.raRoleCodes.raRole(code: "S8000:G8000:R8003") == .agent)
        #expect(configured.raRoleCodes.code(for: .manager) == "RAMANAGER")
        let shared = await #expect(throws: CardDeskError.self) {
            try await ServerSettings.resolve(flags: ["ra.role.sponsor": "RAMANAGER"], environment: [:])
        }
        #expect(shared?.code == .configuration)
    }

    @Test("A PostgreSQL password never appears in descriptions")
    func redaction() throws {
        let location = try DatabaseLocation(url: "postgres://carddesk:s3cret@db.internal:5432/carddesk")
        #expect(!location.description.contains("s3cret"))
        #expect(location.description == "postgres://carddesk:***@db.internal:5432/carddesk")
    }
}
