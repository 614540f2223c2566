public import CardDeskCore
import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// Email over SMTP (RFC 5321): EHLO, STARTTLS (required unless the operator allowed plain text), AUTH PLAIN when
/// a user is configured, then one message. One connection per message: the outbox sends few, and a fresh connection
/// survives relays that drop idle ones.
public struct SMTPSender: MessageSender {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var user: String?
        public var password: String?
        public var from: String
        /// Refuse to send unless the connection is upgraded with STARTTLS.
        public var requireTLS: Bool
        /// PEM file of the CA to trust for the relay's certificate (default: the system's trust store).
        public var trustedCAFile: String?
        public var heloName: String

        public init(host: String, port: Int, user: String? = nil, password: String? = nil, from: String, requireTLS: Bool = false,
                    trustedCAFile: String? = nil, heloName: String = "carddesk.localhost") {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.from = from
            self.requireTLS = requireTLS
            self.trustedCAFile = trustedCAFile
            self.heloName = heloName
        }

        /// `smtp://[user:password@]host:port`. STARTTLS is required (a relay that does not offer it, or a network that
        /// strips it, gets nothing) unless `allowPlaintext` (`--smtp-insecure`), and always when a user is configured.
        public static func parse(url text: String, from: String, trustedCAFile: String? = nil, allowPlaintext: Bool = false) throws(CardDeskError) -> Settings {
            guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), ["smtp", "smtp+starttls"].contains(scheme),
                  let host = url.host, !host.isEmpty
            else {
                throw CardDeskError(.configuration, "The SMTP relay \"\(text)\" is not a URL such as smtp://user:password@mail.example.org:587.")
            }
            guard from.contains("@") else {
                throw CardDeskError(.configuration, "Set the sender address with --smtp-from ADDRESS (for example carddesk@nhs.net).")
            }
            return Settings(
                host: host, port: url.port ?? 25, user: url.user?.removingPercentEncoding, password: url.password?.removingPercentEncoding,
                from: from, requireTLS: !allowPlaintext || scheme == "smtp+starttls" || url.user != nil, trustedCAFile: trustedCAFile
            )
        }
    }

    public let settings: Settings

    /// The name the relay's certificate must carry: the host as configured. Only an IP address literal is left to the
    /// TLS layer, which then checks the certificate against the address it connected to (a name is never skipped,
    /// even one that starts with a digit, such as `1mail.example.org`).
    static func verifiedName(_ host: String) -> String? {
        var v4 = in_addr()
        var v6 = in6_addr()
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if inet_pton(AF_INET, bare, &v4) == 1 || inet_pton(AF_INET6, bare, &v6) == 1 { return nil }
        return host
    }

    public init(settings: Settings) {
        self.settings = settings
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    public func send(to recipient: String, subject: String, body: String) async throws {
        guard !recipient.contains("\r"), !recipient.contains("\n"), !subject.contains("\r"), !subject.contains("\n") else {
            throw Failure(description: "refused: a line break in an address or subject")
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: settings.host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            var lines = inbound.makeAsyncIterator()
            func reply() async throws -> (code: Int, lines: [String]) {
                var collected: [String] = []
                while true {
                    guard var buffer = try await lines.next(), let line = buffer.readString(length: buffer.readableBytes) else {
                        throw Failure(description: "the SMTP relay closed the connection")
                    }
                    let text = line.hasSuffix("\r") ? String(line.dropLast()) : line
                    collected.append(text)
                    guard text.count >= 3, let code = Int(text.prefix(3)) else { throw Failure(description: "the SMTP relay answered \"\(text)\"") }
                    if text.count == 3 || text[text.index(text.startIndex, offsetBy: 3)] == " " { return (code, collected) }
                }
            }
            func command(_ text: String, expect: ClosedRange<Int>, shown: String? = nil) async throws -> [String] {
                try await outbound.write(ByteBuffer(string: text + "\r\n"))
                let answer = try await reply()
                guard expect.contains(answer.code) else {
                    throw Failure(description: "the SMTP relay refused \(shown ?? text): \(answer.lines.joined(separator: " / "))")
                }
                return answer.lines
            }
            let greeting = try await reply()
            guard greeting.code == 220 else { throw Failure(description: "the SMTP relay greeted with \(greeting.lines.joined(separator: " "))") }
            var capabilities = try await command("EHLO \(settings.heloName)", expect: 250...250)
            if capabilities.contains(where: { $0.uppercased().dropFirst(4).hasPrefix("STARTTLS") }) {
                _ = try await command("STARTTLS", expect: 220...220)
                var configuration = TLSConfiguration.makeClientConfiguration()
                if let file = settings.trustedCAFile {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
                }
                let context = try NIOSSLContext(configuration: configuration)
                let handler = try NIOSSLClientHandler(context: context, serverHostname: Self.verifiedName(settings.host))
                try await channel.channel.pipeline.addHandler(handler, position: .first).get()
                capabilities = try await command("EHLO \(settings.heloName)", expect: 250...250)
            } else if settings.requireTLS {
                throw Failure(description: "the SMTP relay does not offer STARTTLS, and sending a password or a code in clear is refused (a relay on a trusted network only: --smtp-insecure)")
            }
            if let user = settings.user {
                let token = Data(("\0" + user + "\0" + (settings.password ?? "")).utf8).base64EncodedString()
                _ = try await command("AUTH PLAIN \(token)", expect: 235...235, shown: "AUTH PLAIN (the credentials)")
            }
            _ = try await command("MAIL FROM:<\(settings.from)>", expect: 250...250)
            _ = try await command("RCPT TO:<\(recipient)>", expect: 250...251)
            _ = try await command("DATA", expect: 354...354)
            let message = Self.message(from: settings.from, to: recipient, subject: subject, body: body)
            _ = try await command(message + "\r\n.", expect: 250...250, shown: "the message")
            _ = try? await command("QUIT", expect: 221...221)
        }
    }

    /// RFC 5322 headers and a plain-text body, with dot-stuffing.
    static func message(from: String, to: String, subject: String, body: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let lines = [
            "From: CardDesk <\(from)>",
            "To: <\(to)>",
            "Subject: \(subject)",
            "Date: \(formatter.string(from: Date()))",
            "Message-ID: <\(SecureRandom.uuid())@carddesk>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
        ] + body.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix(".") ? "." + $0 : String($0) }
        return lines.joined(separator: "\r\n")
    }
}
