import Hummingbird

/// A form posted by a signed-in page: it carries the session's CSRF token (see `PageRoutes.checkedForm`).
protocol PostedForm: Decodable {
    var csrf: String? { get }
}

extension PageForms.Contact: PostedForm {}

/// The plain forms the pages post (`application/x-www-form-urlencoded`), read with Hummingbird's form decoder.
/// Every field is optional: a missing one reaches the service as empty and is refused there, with its message.
public enum PageForms {
    /// `POST /contacts` (add or change an address) and `POST /contacts/confirm` (its code).
    public struct Contact: Codable, Equatable, Sendable {
        public let csrf: String?
        public let channel: String?
        public let address: String?
        public let challenge: String?
        public let signature: String?
        public let id: String?
        public let code: String?
    }

    /// `POST /logout` without script (the script sends the token in a header).
    public struct Logout: Codable, Equatable, Sendable {
        public let csrf: String?
    }

    public static func decode<Form: Decodable>(_ type: Form.Type, from text: String) throws -> Form {
        try URLEncodedFormDecoder().decode(type, from: text)
    }
}

typealias ContactForm = PageForms.Contact
typealias LogoutForm = PageForms.Logout
