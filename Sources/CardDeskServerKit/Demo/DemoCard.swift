import CardDeskCore
import Foundation
import Smartcard
import VirtualSmartcard

/// The demo a newcomer gets from `carddesk-server` with no arguments: a demo card holder with two roles and a virtual
/// card whose certificates expire in 30 days (inside the renewal window), created once in the data directory and
/// put in the reader folder `<data>/reader`, ready for `carddesk agent`.
enum DemoCard {
    static let userID = "999900000001"

    /// Creates the demo card if it does not exist yet; returns what to tell the person at the terminal.
    static func ensure(_ instance: CardDeskInstance, serverURL: String) async throws -> String {
        let data = instance.settings.dataDirectory
        let file = data.appendingPathComponent("demo-card.json")
        let notes = data.appendingPathComponent("demo-card.txt")
        // The notes mark that the demo exists (the card file itself moves in and out of the reader).
        if !FileManager.default.fileExists(atPath: notes.path) {
            let id = try UserID(userID)
            if try await instance.store.user(id: id) == nil {
                let user = try User(id: id, givenName: "Demo", familyName: "Clinician", organisation: "DEMO", roles: [try Role(parsing: "S0080:G0450:R5080@DEMO"), try Role(parsing: "S8000:G8000:R8000@DEMO")])
                try await instance.store.addUser(user, audit: AuditEvent(action: .userAdd, actor: "system", subject: "user:\(id)", details: "demo card holder", time: instance.clock.now()))
            }
            let passcode = String(format: "%06d", Int.random(in: 0...999_999))
            let card = try await instance.cardIssuer.issueVirtualCard(
                userID: id, file: file, passcode: passcode, keyAlgorithm: .rsa2048, validityDays: 30, actor: "system"
            )
            let reader = data.appendingPathComponent("reader")
            try SecretFile.createDirectory(reader.path)
            _ = try FolderReader(folder: reader).insert(file)
            let text = """
                Demo smartcard \(card.serial) for Demo Clinician (user \(userID)), in the reader folder \(reader.path).
                Its passcode is \(passcode); its certificates expire in 30 days, so renewal is open.

                Try the journey: start the agent in a second terminal, then open \(serverURL)/ in Chromium, Chrome or Edge.
                    swift run carddesk agent --reader \(reader.path) --server \(serverURL)
                Take the card out and put it back:
                    swift run carddesk card remove --reader \(reader.path)
                    swift run carddesk card insert \(file.path) --reader \(reader.path)
                Or renew from the terminal:
                    swift run carddesk renew --reader \(reader.path) --server \(serverURL)
                """
            _ = FileManager.default.createFile(atPath: notes.path, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: 0o600])
        }
        return (try? String(contentsOf: notes, encoding: .utf8)) ?? "Demo card: \(file.path)"
    }
}
