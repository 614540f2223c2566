@testable import CardAgent
import CardDeskAPI
import CardDeskCore
import CardDeskTestSupport
import Foundation
import RegistrationAuthority
import Smartcard
import Testing
import VirtualSmartcard

/// The RA desk: an RA signs the agent in with their own card, the card holder's card goes into the second reader, and
/// the agent renews or unlocks it through the real server over HTTP (`/api/v1/ra/…`), which decides by the national
/// table for the card's holder. Every column of the table that needs the holder's card, for every RA role.
@Suite("Agent: the RA desk's second reader")
struct RADeskTests {
    /// An agent with an RA signed in with their own card (user `id`, one role `CODE@ORG`), and what it said.
    static func desk(_ fixture: RenewalFixture, _ server: ServerClient, id: String, role: String) async throws -> (WorkstationAgent, TerminalRecord) {
        let userID = try UserID(id)
        let parsed = try Role(parsing: role)
        try await fixture.instance.store.addUser(
            try User(id: userID, givenName: "Staff", familyName: "Member", organisation: parsed.organisation, roles: [parsed]),
            audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:\(id)", time: fixture.clock.now())
        )
        let file = fixture.folder.appendingPathComponent("ra-\(id).json")
        _ = try await fixture.instance.cardIssuer.issueVirtualCard(userID: userID, file: file, passcode: "123456", keyAlgorithm: .p256, validityDays: 365, actor: "test")
        let own = PIVCardSession(transport: VirtualPIVCard(file: file))
        let record = TerminalRecord()
        let agent = WorkstationAgent(
            reader: FolderReader(folder: fixture.folder), subjectReader: FolderReader(folder: fixture.folder.appendingPathComponent("second")),
            server: server, bridgePort: 0, output: { record.say($0) }, opener: { _ in false }
        )
        await agent.inserted(serial: try await own.serial(), card: own)
        try await agent.signIn(passcode: "123456", fromTerminal: false)
        #expect(await agent.status().phase == .signedIn)
        return (agent, record)
    }

    /// Puts `card` into the desk's second reader and renews it there with the holder's passcode; the outcome as the
    /// page polls it.
    static func renewAtDesk(_ agent: WorkstationAgent, _ card: PIVCardSession, repair: Bool = false) async throws -> BridgeAPI.RenewalProgress {
        try await card.reset()
        await agent.subjectInserted(serial: try await card.serial(), card: card)
        try await agent.startSubjectRenewal(passcode: "123456", repair: repair)
        for _ in 0..<600 {
            let progress = await agent.subjectRenewalProgress
            if progress.state == .succeeded || progress.state == .failed { return progress }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the renewal at the desk did not end")
        return await agent.subjectRenewalProgress
    }

    static func code(_ role: RARole) -> String { RARoleCodes.defaults.code(for: role) }

    @Test("Renewal at the desk, role by role: certificates falling due for every role, expired ones for RA Agents and above; refusals audited")
    func renewalColumns() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                // Jane's cards whose certificates will have expired: issued now for 30 days, then the clock moves on.
                var expired: [RARole: PIVCardSession] = [:]
                for role in RARole.allCases { expired[role] = try await fixture.issueCard("expired-\(role.rawValue)", validityDays: 30) }
                fixture.clock.advance(seconds: 31 * 86_400)
                for (index, role) in RARole.allCases.enumerated() {
                    let id = "55525460098\(index)"
                    let (agent, record) = try await Self.desk(fixture, server, id: id, role: "\(Self.code(role))@RBQ")

                    // Falling due (30 days left): every RA role may renew it.
                    let due = try await fixture.issueCard("due-\(role.rawValue)")
                    let dueSerial = try await due.serial()
                    let before = try #require(try await due.certificate(in: .authentication))
                    let renewed = try await Self.renewAtDesk(agent, due)
                    #expect(renewed.state == .succeeded, "\(role): \(renewed.message ?? "")")
                    try await due.verifyPIN("123456")
                    let after = try #require(try await due.certificate(in: .authentication))
                    #expect(after.notValidAfter > before.notValidAfter.addingTimeInterval(300 * 86_400), "\(role)")
                    let done = try #require(try await fixture.instance.store.latestRenewal(cardSerial: dueSerial))
                    #expect(done.status == .done && done.performedBy == "user:\(id)", "\(role)")
                    #expect(record.lines.contains("Success: certificates renewed for smartcard \(dueSerial)."), "\(role)")

                    // Expired: only RA Agents and above.
                    let card = try #require(expired[role])
                    let outcome = try await Self.renewAtDesk(agent, card)
                    try await card.verifyPIN("123456")
                    let now = Date(timeIntervalSince1970: Double(fixture.clock.now().secondsSince1970))
                    let held = try #require(try await card.certificate(in: .authentication))
                    if NationalRATable.allows(role, .renewExpired) {
                        #expect(outcome.state == .succeeded, "\(role): \(outcome.message ?? "")")
                        #expect(held.notValidAfter > now, "\(role): the card holds certificates valid again")
                    } else {
                        #expect(outcome.state == .failed && outcome.errorCode == "notAuthorised", "\(role)")
                        #expect(outcome.message == "\(role.withArticle) may not renew expired certificates: ask an RA Agent or your RA Manager.", "\(role)")
                        #expect(held.notValidAfter < now, "\(role): nothing changed on the card")
                        #expect(try await fixture.instance.store.activeRenewal(cardSerial: try await card.serial()) == nil, "\(role): no renewal was started")
                    }
                }
                let refusals = try await fixture.audit(.raAction).filter { $0.hasPrefix("failure renew refused") }
                #expect(refusals.count == 2, "Sponsor and LSA, each audited: \(refusals)")
                #expect(try await fixture.audit(.raAction).filter { $0.hasPrefix("success renewal") }.count == 8)
            }
        }
    }

    @Test("At the desk, nobody renews, repairs, unlocks or clears their own card, nor works on (or issues a card to) someone their RA role does not cover")
    func ownCardAndOtherOrganisation() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let (agent, _) = try await Self.desk(fixture, server, id: "555254600990", role: "RAMANAGER@RBQ")
                // Their own (second) card.
                let ownFile = fixture.folder.appendingPathComponent("own-second.json")
                _ = try await fixture.instance.cardIssuer.issueVirtualCard(
                    userID: try UserID("555254600990"), file: ownFile, passcode: "123456", keyAlgorithm: .p256, validityDays: 30, actor: "test"
                )
                let own = PIVCardSession(transport: VirtualPIVCard(file: ownFile))
                let renewOwn = try await Self.renewAtDesk(agent, own)
                #expect(renewOwn.state == .failed && renewOwn.errorCode == "notAuthorised")
                #expect(renewOwn.message?.contains("Nobody performs an RA action on their own card") == true)
                let unlockOwn = await #expect(throws: CardDeskError.self) { try await agent.unlockSubject(passcode: "275913", repeated: "275913") }
                #expect(unlockOwn?.code == .notAuthorised)
                let repairOwn = try await Self.renewAtDesk(agent, own, repair: true)
                #expect(repairOwn.state == .failed && repairOwn.message?.contains("on their own card") == true)
                let clearOwn = await #expect(throws: CardDeskError.self) { try await agent.clearSubject() }
                #expect(clearOwn?.code == .notAuthorised)

                // Someone of another organisation.
                let omar = try UserID("555254600300")
                try await fixture.instance.store.addUser(
                    try User(id: omar, givenName: "Omar", familyName: "Elsewhere", organisation: "RXH", roles: [try Role(parsing: "R8000@RXH")]),
                    audit: AuditEvent(action: .userAdd, actor: "test", subject: "user:555254600300", time: fixture.clock.now())
                )
                let omarFile = fixture.folder.appendingPathComponent("omar.json")
                _ = try await fixture.instance.cardIssuer.issueVirtualCard(userID: omar, file: omarFile, passcode: "123456", keyAlgorithm: .p256, validityDays: 30, actor: "test")
                let omarCard = PIVCardSession(transport: VirtualPIVCard(file: omarFile))
                let renewOther = try await Self.renewAtDesk(agent, omarCard)
                #expect(renewOther.state == .failed && renewOther.message == "Your RA Manager role covers RBQ; Omar Elsewhere works for RXH. Ask their own Registration Authority.")
                let unlockOther = await #expect(throws: CardDeskError.self) { try await agent.unlockSubject(passcode: "275913", repeated: "275913") }
                #expect(unlockOther?.code == .notAuthorised)
                let repairOther = try await Self.renewAtDesk(agent, omarCard, repair: true)
                #expect(repairOther.state == .failed && repairOther.message?.contains("works for RXH") == true)
                let clearOther = await #expect(throws: CardDeskError.self) { try await agent.clearSubject() }
                #expect(clearOther?.code == .notAuthorised)
                let blank = PIVCardSession(transport: try VirtualPIVCard.blank(
                    file: fixture.folder.appendingPathComponent("blank-for-omar.json"), manufacturer: fixture.instance.manufacturer
                ))
                await agent.subjectInserted(serial: try await blank.serial(), card: blank)
                let issueOther = await #expect(throws: CardDeskError.self) {
                    try await agent.issueSubjectCard(userID: omar.rawValue, passcode: "275913", repeated: "275913")
                }
                #expect(issueOther?.reason.contains("works for RXH") == true)
                // The card still takes its old passcode: nothing was released or changed.
                try await omarCard.verifyPIN("123456")
                #expect(try await fixture.audit(.raAction).filter { $0.hasPrefix("failure") }.count == 9, "every refusal audited")
                #expect(try await fixture.audit(.unlock).isEmpty, "no PUK was released")

                // With no card in the second reader, the agent says so.
                await agent.subjectRemoved()
                let empty = await #expect(throws: CardDeskError.self) { try await agent.startSubjectRenewal(passcode: "123456") }
                #expect(empty?.reason == "Put the card holder's smartcard in the second reader.")
            }
        }
    }

    @Test("Unlock at the desk, role by role (every role may): the locked card takes the holder's new passcode, its PUK changes, the server never sees the passcode")
    func unlockColumn() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                for (index, role) in RARole.allCases.enumerated() {
                    let (agent, record) = try await Self.desk(fixture, server, id: "55525460099\(index)", role: "\(Self.code(role))@RBQ")
                    let card = try await fixture.issueCard("locked-\(role.rawValue)")
                    let serial = try await card.serial()
                    let pukBefore = try #require(try await fixture.instance.store.card(serial: serial)).pukSealed
                    for _ in 0..<3 { try? await card.verifyPIN("000000") }
                    #expect(try await card.pinState().isLocked)
                    await agent.subjectInserted(serial: serial, card: card)
                    #expect(try await agent.subjectCard().locked)
                    // A trivial passcode is refused here, before anything is asked of the server.
                    let weak = await #expect(throws: CardDeskError.self) { try await agent.unlockSubject(passcode: "111111", repeated: "111111") }
                    #expect(weak?.code == .weakPasscode)
                    try await agent.unlockSubject(passcode: "275913", repeated: "275913")
                    #expect(try await agent.subjectCard().locked == false, "\(role)")
                    try await card.verifyPIN("275913")
                    #expect(record.lines.contains("Card \(serial) (second reader) is unlocked: its holder chose a new passcode."))
                    let stored = try #require(try await fixture.instance.store.card(serial: serial))
                    #expect(stored.pukSealed != pukBefore && stored.pukNextSealed == nil, "\(role): the PUK was rotated")
                }
                let entries = try await fixture.audit(.unlock)
                #expect(entries.filter { $0.contains("passcode reset and PUK rotated at the RA desk by") }.count == RARole.allCases.count)
                #expect(!entries.contains { $0.contains("275913") })
            }
        }
    }

    @Test("After two self-renewals the third is for the RA; once an RA has renewed the card at the desk, its holder may renew it again")
    func raRenewalResetsTheSelfRenewalCount() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let card = try await fixture.issueCard("reset")
                let serial = try await card.serial()
                func intoWindow() async throws {
                    try await card.verifyPIN("123456")
                    let expiry = try #require(try await card.certificate(in: .authentication)).notValidAfter
                    fixture.clock.advance(seconds: Int64(expiry.timeIntervalSince1970) - fixture.clock.now().secondsSince1970 - 80 * 86_400)
                }
                for _ in 1...2 {
                    try await RenewalClient(server: server, card: card).renew(passcode: "123456") { _, _ in }
                    try await intoWindow()
                }
                #expect(try await fixture.instance.renewal.status(cardSerial: serial).renewalAvailable == false)
                let refused = await #expect(throws: CardDeskError.self) {
                    try await RenewalClient(server: server, card: card).renew(passcode: "123456") { _, _ in }
                }
                #expect(refused?.code == .raRenewalRequired)

                let (agent, _) = try await Self.desk(fixture, server, id: "555254600995", role: "RASPONSOR@RBQ")
                let atDesk = try await Self.renewAtDesk(agent, card)
                #expect(atDesk.state == .succeeded, "\(atDesk.message ?? "")")
                #expect(try await fixture.instance.store.finishedSelfRenewals(cardSerial: serial) == 0)

                try await intoWindow()
                let status = try await fixture.instance.renewal.status(cardSerial: serial)
                #expect(status.renewalAvailable, "\(status.message)")
                try await RenewalClient(server: server, card: card).renew(passcode: "123456") { _, _ in }
                #expect(try await fixture.instance.store.latestRenewal(cardSerial: serial)?.performedBy == nil)
                #expect(try await fixture.instance.store.finishedSelfRenewals(cardSerial: serial) == 1)
            }
        }
    }

    @Test("Issuing a blank card at the desk, role by role (RA Agents and above): with the passcode the holder types, or locked for self-service unlock; refusals audited")
    func issueColumn() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                for (index, role) in RARole.allCases.enumerated() {
                    let (agent, record) = try await Self.desk(fixture, server, id: "55525460097\(index)", role: "\(Self.code(role))@RBQ")
                    let file = fixture.folder.appendingPathComponent("blank-\(role.rawValue).json")
                    let card = PIVCardSession(transport: try VirtualPIVCard.blank(file: file, manufacturer: fixture.instance.manufacturer))
                    await agent.subjectInserted(serial: try await card.serial(), card: card)
                    #expect(try await agent.subjectCard().blank)
                    let before = try await fixture.instance.store.cards(userID: fixture.user).count
                    if NationalRATable.allows(role, .issueCard) {
                        let serial = try await agent.issueSubjectCard(userID: fixture.user.rawValue, passcode: "275913", repeated: "275913")
                        #expect(record.lines.last == "Card \(serial) issued in the second reader.")
                        let subject = try await agent.subjectCard()
                        #expect(subject.cardSerial == serial && !subject.blank && subject.triesLeft == 3, "\(role)")
                        let stored = try #require(try await fixture.instance.store.card(serial: serial))
                        #expect(stored.status == .active && stored.userID == fixture.user, "\(role)")
                        // The holder's passcode opens it, and it signs in.
                        try await card.verifyPIN("275913")
                        let challenge = try await fixture.instance.login.challenge()
                        let signature = try await card.sign(LoginMessage.make(challenge: challenge, cardSerial: serial), with: .authentication)
                        let session = try await fixture.instance.login.login(cardSerial: serial, challenge: challenge, signature: signature.rawRepresentation)
                        #expect(session.userID == fixture.user.rawValue)
                        // An issued card is not issued again.
                        let again = await #expect(throws: CardDeskError.self) {
                            try await agent.issueSubjectCard(userID: fixture.user.rawValue, passcode: "275913", repeated: "275913")
                        }
                        #expect(again?.reason.contains("has been issued already") == true)
                    } else {
                        let refused = await #expect(throws: CardDeskError.self) {
                            try await agent.issueSubjectCard(userID: fixture.user.rawValue, passcode: "275913", repeated: "275913")
                        }
                        #expect(refused?.code == .notAuthorised, "\(role)")
                        #expect(refused?.reason == "\(role.withArticle) may not issue a card: ask an RA Agent or your RA Manager.")
                        #expect(try await fixture.instance.store.cards(userID: fixture.user).count == before, "\(role): no card was made")
                        #expect(try await agent.subjectCard().blank, "\(role): the card is still blank")
                    }
                }
                #expect(try await fixture.audit(.raAction).filter { $0.hasPrefix("failure issue refused") }.count == 2)

                // Issued locked: nobody knows its passcode; its holder sets one by self-service unlock.
                let (agent, _) = try await Self.desk(fixture, server, id: "555254600979", role: "RAMANAGER@RBQ")
                let file = fixture.folder.appendingPathComponent("blank-locked.json")
                let card = PIVCardSession(transport: try VirtualPIVCard.blank(file: file, manufacturer: fixture.instance.manufacturer))
                await agent.subjectInserted(serial: try await card.serial(), card: card)
                let serial = try await agent.issueSubjectCard(userID: fixture.user.rawValue, passcode: nil, repeated: nil)
                let state = try await card.pinState()
                #expect(state.isLocked && state.pukTriesLeft == 3)
                #expect(try await agent.subjectCard().locked)
                #expect(try await fixture.instance.store.card(serial: serial)?.status == .active)
                // Nobody issues a card to themselves.
                let blank = PIVCardSession(transport: try VirtualPIVCard.blank(
                    file: fixture.folder.appendingPathComponent("blank-own.json"), manufacturer: fixture.instance.manufacturer
                ))
                await agent.subjectInserted(serial: try await blank.serial(), card: blank)
                let own = await #expect(throws: CardDeskError.self) {
                    try await agent.issueSubjectCard(userID: "555254600979", passcode: "275913", repeated: "275913")
                }
                #expect(own?.reason.contains("own card") == true)
            }
        }
    }

    @Test("Repair at the desk, role by role (RA Agents and above): new keys and certificates on a card whose renewal is not open; renewal itself is refused then")
    func repairColumn() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                for (index, role) in RARole.allCases.enumerated() {
                    let (agent, _) = try await Self.desk(fixture, server, id: "55525460086\(index)", role: "\(Self.code(role))@RBQ")
                    let card = try await fixture.issueCard("repair-\(role.rawValue)", validityDays: 365)
                    let serial = try await card.serial()
                    let before = try #require(try await card.certificate(in: .authentication))
                    let renewal = try await Self.renewAtDesk(agent, card)
                    #expect(renewal.state == .failed && renewal.errorCode == "renewalNotOpen", "\(role): \(renewal.message ?? "")")
                    let repaired = try await Self.renewAtDesk(agent, card, repair: true)
                    try await card.verifyPIN("123456")
                    let after = try #require(try await card.certificate(in: .authentication))
                    if NationalRATable.allows(role, .repair) {
                        #expect(repaired.state == .succeeded, "\(role): \(repaired.message ?? "")")
                        #expect(after.serialNumber != before.serialNumber && after.publicKey != before.publicKey, "\(role): new key, new certificate")
                        let done = try #require(try await fixture.instance.store.latestRenewal(cardSerial: serial))
                        #expect(done.status == .done && done.performedBy == "user:55525460086\(index)")
                        let old = try #require(try await fixture.instance.store.certificate(serial: SerialNumber(bytes: Array(before.serialNumber.bytes))))
                        #expect(old.status == .revoked && old.revocationReason == .superseded)
                    } else {
                        #expect(repaired.state == .failed && repaired.message == "\(role.withArticle) may not repair a card: ask an RA Agent or your RA Manager.")
                        #expect(after == before, "\(role): the card is as it was")
                    }
                }
                #expect(try await fixture.audit(.raAction).filter { $0.hasPrefix("failure repair refused") }.count == 2)
                #expect(try await fixture.audit(.raAction).filter { $0.hasPrefix("success repair") }.count == 3)
            }
        }
    }

    @Test("Clear at the desk, role by role (RA Agents and above): the card is cancelled, its certificates revoked, and it goes back to factory state, to be issued again")
    func clearColumn() async throws {
        try await RenewalFixture.with { fixture in
            try await LiveServer.with(fixture.instance) { server in
                let store = fixture.instance.store
                for (index, role) in RARole.allCases.enumerated() {
                    let (agent, record) = try await Self.desk(fixture, server, id: "55525460085\(index)", role: "\(Self.code(role))@RBQ")
                    let card = try await fixture.issueCard("clear-\(role.rawValue)")
                    let serial = try await card.serial()
                    try await card.reset()
                    await agent.subjectInserted(serial: serial, card: card)
                    if NationalRATable.allows(role, .clear) {
                        try await agent.clearSubject()
                        #expect(record.lines.last == "Card \(serial) (second reader) is cleared: it is blank, ready to be issued again.")
                        #expect(try await store.card(serial: serial)?.status == .cancelled, "\(role)")
                        let certificates = try await store.certificates(cardSerial: serial)
                        #expect(certificates.count == 2 && certificates.allSatisfy { $0.status == .revoked && $0.revocationReason == .cessationOfOperation })
                        #expect(try await agent.subjectCard().blank, "\(role)")
                        #expect(try await card.certificate(in: .authentication) == nil)
                        #expect(try await card.certificate(in: .signing) == nil)
                        // Factory passcode and management key: it can be issued again, to anyone.
                        try await card.verifyPIN("123456")
                        let again = try await agent.issueSubjectCard(userID: fixture.user.rawValue, passcode: "275913", repeated: "275913")
                        let issued = try await store.card(serial: again)
                        #expect(again != serial && issued?.status == .active, "\(role)")
                    } else {
                        let refused = await #expect(throws: CardDeskError.self) { try await agent.clearSubject() }
                        #expect(refused?.reason == "\(role.withArticle) may not clear a card: ask an RA Agent or your RA Manager.")
                        #expect(try await store.card(serial: serial)?.status == .active, "\(role)")
                        try await card.verifyPIN("123456")
                        #expect(try await card.certificate(in: .authentication) != nil)
                    }
                }
                #expect(try await fixture.audit(.raAction).filter { $0.hasPrefix("failure clear refused") }.count == 2)
                #expect(try await fixture.audit(.raAction).filter { $0.contains("card cleared by") }.count == 3)
            }
        }
    }
}
