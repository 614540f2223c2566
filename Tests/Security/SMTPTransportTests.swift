import CardDeskCore
@testable import Messaging
import Testing

/// Issue 9, item 8: codes are never emailed in clear by default, and the relay's name is always verified.
@Suite("SMTP transport security")
struct SMTPTransportTests {
    @Test("A relay must offer STARTTLS unless the operator says --smtp-insecure; a relay password always needs TLS")
    func tlsRequiredByDefault() throws {
        #expect(try SMTPSender.Settings.parse(url: "smtp://relay.nhs.net:25", from: "carddesk@nhs.net").requireTLS)
        #expect(try !SMTPSender.Settings.parse(url: "smtp://relay.nhs.net:25", from: "carddesk@nhs.net", allowPlaintext: true).requireTLS)
        #expect(try SMTPSender.Settings.parse(url: "smtp://user:pw@relay.nhs.net:587", from: "carddesk@nhs.net", allowPlaintext: true).requireTLS)
        #expect(try SMTPSender.Settings.parse(url: "smtp+starttls://relay.nhs.net", from: "carddesk@nhs.net", allowPlaintext: true).requireTLS)
    }

    @Test("A relay name that starts with a digit is verified like any other; only an IP address literal is left to the address check")
    func hostnameVerification() {
        #expect(SMTPSender.verifiedName("1mail.example.org") == "1mail.example.org")
        #expect(SMTPSender.verifiedName("365relay.nhs.net") == "365relay.nhs.net")
        #expect(SMTPSender.verifiedName("mail.nhs.net") == "mail.nhs.net")
        #expect(SMTPSender.verifiedName("127.0.0.1") == nil)
        #expect(SMTPSender.verifiedName("::1") == nil)
        #expect(SMTPSender.verifiedName("[2001:db8::25]") == nil)
    }
}
