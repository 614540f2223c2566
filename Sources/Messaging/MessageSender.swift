public import CardDeskCore

/// Sends one message to one address. Implementations: `SMTPSender` (email), `HTTPTextSender` (text messages
/// through an HTTP gateway). A failure throws; the outbox retries later.
public protocol MessageSender: Sendable {
    func send(to recipient: String, subject: String, body: String) async throws
}

/// The senders per channel; a channel without one leaves its messages waiting (and says so in the log).
public struct MessageSenders: Sendable {
    public var email: (any MessageSender)?
    public var sms: (any MessageSender)?

    public init(email: (any MessageSender)? = nil, sms: (any MessageSender)? = nil) {
        self.email = email
        self.sms = sms
    }

    public func sender(for channel: ContactChannel) -> (any MessageSender)? {
        switch channel {
        case .email: email
        case .sms: sms
        }
    }
}
