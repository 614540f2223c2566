import CardDeskCore
import Foundation
import Smartcard

/// The demo a newcomer gets from `carddesk-server` with no arguments: a demo card holder and a virtual card whose
/// certificates expire in 30 days (inside the renewal window), created once in the data directory.
enum DemoCard {
    static let userID = "999900000001"

    /// Creates the demo card if it does not exist yet; returns what to tell the person at the terminal.
    static func ensure(_ instance: CardDeskInstance, serverURL: String) async throws -> String {
        let data = instance.settings.dataDirectory
        let file = data.appendingPathComponent("demo-card.json")
        let notes = data.appendingPathComponent("demo-card.txt")
        if !FileManager.default.fileExists(atPath: file.path) {
            let id = try UserID(userID)
            if try await instance.store.user(id: id) == nil {
                let user = try User(id: id, givenName: "Demo", familyName: "Clinician", organisation: "DEMO", roles: [try Role(parsing: "S0080:G0450:R5080@DEMO")])
                try await instance.store.addUser(user, audit: AuditEvent(action: .userAdd, actor: "system", subject: "user:\(id)", details: "demo card holder", time: instance.clock.now()))
            }
            let passcode = String(format: "%06d", Int.random(in: 0...999_999))
            let card = try await instance.cardIssuer.issueVirtualCard(
                userID: id, file: file, passcode: passcode, keyAlgorithm: .rsa2048, validityDays: 30, actor: "system"
            )
            let text = """
                Demo smartcard \(card.serial) for Demo Clinician (user \(userID)): \(file.path)
                Its passcode is \(passcode); its certificates expire in 30 days, so renewal is open.
                Renew it:   carddesk renew --card \(file.path) --server \(serverURL)
                Check it:   carddesk status --card \(file.path) --server \(serverURL)
                """
            _ = FileManager.default.createFile(atPath: notes.path, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: 0o600])
        }
        return (try? String(contentsOf: notes, encoding: .utf8)) ?? "Demo card: \(file.path)"
    }
}
