import CardDeskAPI
import CardDeskCore
import CardDeskWeb
import CertificateAuthority
import Foundation

/// The inputs an attacker controls, one fuzz target each. A target returns normally for any input the code handles
/// (parsed, or refused with a `CardDeskError`); anything else (a crash, another error type escaping, a broken
/// round trip) stops the process, which is what libFuzzer reports as a finding.
enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "csr": csr,
        "ocsp-request": ocspRequest,
        "crl": crl,
        "ocsp-response": ocspResponse,
        "json": json,
        "forms": forms,
    ]

    /// The renewal CSR: parsed, then its proof of possession checked (as the renewal engine does).
    static func csr(_ bytes: [UInt8]) {
        refusedOnlyWithCardDeskError("CSR") {
            let request = try CertificateRequestCheck.parse(bytes)
            try CertificateRequestCheck.checkProofOfPossession(request)
        }
    }

    /// `POST /ocsp` bodies (and `GET /ocsp/<base64>` once decoded).
    static func ocspRequest(_ bytes: [UInt8]) {
        refusedOnlyWithCardDeskError("OCSP request") { _ = try OCSPRequest(derEncoded: bytes) }
    }

    /// CRLs as relying parties (and the tests) read them back.
    static func crl(_ bytes: [UInt8]) {
        refusedOnlyWithCardDeskError("CRL") { _ = try CertificateRevocationList(derEncoded: bytes) }
    }

    /// OCSP responses as the agent and the tests read them.
    static func ocspResponse(_ bytes: [UInt8]) {
        refusedOnlyWithCardDeskError("OCSP response") { _ = try OCSPResponse(derEncoded: bytes) }
    }

    /// The JSON request bodies of the server and the bridge: the first byte picks the type, the rest is the body.
    /// Whatever decodes must encode and decode again to the same bytes, and read the same with `CompactJSON` (or be
    /// refused there); every string in it goes through the identifier checks the routes apply, which may refuse it
    /// (CardDeskError) but never crash.
    static func json(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Data(bytes.dropFirst())
        let decoders = jsonBodies
        decoders[Int(selector) % decoders.count](body)
        if let text = String(validating: bytes.dropFirst(), as: UTF8.self) {
            identifierChecks(text)
        }
    }

    private static let jsonBodies: [@Sendable (Data) -> Void] = [
        roundTrip(CardSignedChallenge.self), roundTrip(LoginAPI.ChooseRole.self),
        roundTrip(RenewalAPI.Administer.self), roundTrip(RenewalAPI.Submit.self), roundTrip(RenewalAPI.Confirm.self),
        roundTrip(UnlockAPI.Start.self), roundTrip(UnlockAPI.RequestCode.self), roundTrip(UnlockAPI.Verify.self),
        roundTrip(BridgeAPI.HandoverRequest.self), roundTrip(BridgeAPI.Passcode.self), roundTrip(BridgeAPI.ContactConsent.self),
        roundTrip(BridgeAPI.NewPasscode.self), roundTrip(BridgeAPI.ChangePasscode.self), roundTrip(BridgeAPI.UnlockCode.self),
        roundTrip(BridgeAPI.UnlockChannel.self), roundTrip(BridgeAPI.ChooseRole.self), roundTrip(LoginAPI.AgentCheckIn.self),
        roundTrip(LoginAPI.Login.self), roundTrip(RenewalAPI.Start.self), roundTrip(EnrolmentAPI.Begin.self),
        roundTrip(EnrolmentAPI.Submit.self), roundTrip(EnrolmentAPI.Complete.self), roundTrip(RADeskAPI.Issue.self),
        roundTrip(RADeskAPI.Card.self), roundTrip(RADeskAPI.UnlockDone.self), roundTrip(BridgeAPI.IssueCard.self),
    ]

    private static func roundTrip<T: Codable & SendableMetatype>(_ type: T.Type) -> @Sendable (Data) -> Void {
        { data in
            // The server reads bodies with CompactJSON where it can, JSONDecoder otherwise: the first must never
            // read what the second refuses, nor read it differently.
            let compact = try? CompactJSON.decode(T.self, from: data)
            guard let value = try? JSONDecoder().decode(T.self, from: data) else {
                if compact != nil { fatalError("CompactJSON read a \(T.self) that JSONDecoder refuses: \(String(decoding: data, as: UTF8.self))") }
                return
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            guard let once = try? encoder.encode(value) else { fatalError("\(T.self) decoded but does not encode") }
            if let compact, (try? encoder.encode(compact)) != once {
                fatalError("CompactJSON read a \(T.self) differently from JSONDecoder: \(String(decoding: data, as: UTF8.self))")
            }
            guard let again = try? JSONDecoder().decode(T.self, from: once), let twice = try? encoder.encode(again), once == twice else {
                fatalError("\(T.self) does not round-trip: \(String(decoding: once, as: UTF8.self))")
            }
        }
    }

    /// The identifier checks: refuse, or accept the text unchanged and within its bounds.
    private static func identifierChecks(_ text: String) {
        for (name, check, bound) in [
            ("card serial", Identifiers.cardSerial, 40), ("request ID", Identifiers.requestID, 36), ("token", Identifiers.token, 128),
        ] as [(String, (String) throws -> String, Int)] {
            do {
                let accepted = try check(text)
                guard accepted == text, accepted.utf8.count <= bound else { fatalError("the \(name) check let \(text.debugDescription) through as \(accepted.debugDescription)") }
            } catch is CardDeskError {
            } catch {
                fatalError("the \(name) check threw \(error)")
            }
        }
    }

    /// Form bodies, read as the pages read them (Hummingbird's form decoder into `PageForms`): anything is refused
    /// with an error or read into a form that encodes and reads back the same. (Escaping on the way back into a page
    /// is swift-mustache's, tested in PageSecurityTests.)
    static func forms(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        roundTrip(PageForms.Contact.self, text)
        roundTrip(PageForms.Logout.self, text)
    }

    private static func roundTrip<Form: Codable & Equatable>(_ type: Form.Type, _ text: String) {
        guard let form = try? PageForms.decode(type, from: text) else { return }
        // Encoded as a browser does (every byte but the unreserved ones percent-encoded; Hummingbird's own encoder
        // leaves "+", which its decoder reads as a space).
        guard let json = try? JSONEncoder().encode(form), let fields = try? JSONDecoder().decode([String: String].self, from: json) else {
            fatalError("\(Form.self) read from \(text.debugDescription) does not encode")
        }
        let encoded = encode(fields)
        guard let again = try? PageForms.decode(type, from: encoded), again == form else {
            fatalError("\(Form.self) does not round-trip: \(text.debugDescription) then \(encoded.debugDescription)")
        }
    }

    /// Fields as a browser would send them.
    private static func encode(_ fields: [String: String]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        func part(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: allowed) ?? "" }
        return fields.sorted { $0.key < $1.key }.map { part($0.key) + "=" + part($0.value) }.joined(separator: "&")
    }

    private static func refusedOnlyWithCardDeskError(_ what: String, _ body: () throws -> Void) {
        do {
            try body()
        } catch is CardDeskError {
        } catch {
            fatalError("\(what): an error other than CardDeskError escaped: \(error)")
        }
    }
}
