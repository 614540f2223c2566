import CardDeskCore
@testable import CertificateAuthority
import Testing
import X509

@Suite("Certificate subjects as the store keeps them")
struct SubjectTextTests {
    @Test("Written directly, the subject reads as swift-certificates' description of the name", arguments: [
        ("Ada", "Lovelace", "RBQ"), ("Siobhán", "O'Brien", "X26"), ("Anne Marie", "Smith-Jones", "RX1AB23"),
        ("Zoë", "d'Arcy", "G0450"), ("Jean-Luc", "Ng", "ABC"), ("Łukasz", "Żółć", "RBQ12345"),
    ])
    func sameAsDescription(given: String, family: String, organisation: String) throws {
        let user = try User(id: try UserID("555254600106"), givenName: given, familyName: family, organisation: organisation,
                            roles: [try Role(parsing: "R8000@\(organisation)")])
        let subject = try CertificateProfile.subject(for: user)
        #expect(CertificateProfile.subjectText(for: user, subject: subject) == subject.description)
        #expect(subject.description.hasPrefix("CN=555254600106_"))
    }
}
