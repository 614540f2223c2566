import CardDeskCore
import Testing

@Suite("Domain values")
struct DomainTests {
    @Test("Hexadecimal: upper and lower case, with a separator, empty, and back")
    func hex() {
        #expect(Hex.string([0x00, 0x9F, 0xA0, 0xFF]) == "009FA0FF")
        #expect(Hex.string([0x00, 0x9F, 0xA0, 0xFF], lowercase: true) == "009fa0ff")
        #expect(Hex.string([0x0A, 0xB0, 0x01], separator: ":") == "0A:B0:01")
        #expect(Hex.string([UInt8]()) == "")
        let bytes = (0...255).map(UInt8.init)
        #expect(Hex.bytes(Hex.string(bytes)) == bytes)
        #expect(Hex.bytes(Hex.string(bytes, separator: ":", lowercase: true)) == bytes)
        #expect(Hex.bytes(" 0a B0\n:01 ") == [0x0A, 0xB0, 0x01])
        #expect(Hex.bytes("") == [])
        for bad in ["0", "0G", "abc", "0x01", "１２"] { #expect(Hex.bytes(bad) == nil, "\(bad)") }
        // The canonical form only: upper case, digits only, an even count.
        #expect(Hex.canonicalUpperCase("009FA0FF") == [0x00, 0x9F, 0xA0, 0xFF])
        for other in ["", "009fa0ff", "0A:B0", "ABC", " AB", "AG"] { #expect(Hex.canonicalUpperCase(other) == nil, "\(other)") }
    }

    @Test("Calendar dates read as midnight UTC, and only real ones")
    func dates() {
        #expect(Timestamp(date: "2026-11-30")?.description == "2026-11-30T00:00:00Z")
        #expect(Timestamp(date: "1970-01-01")?.millisecondsSince1970 == 0)
        #expect(Timestamp(date: "2028-02-29")?.dateDescription == "2028-02-29")
        for bad in ["2026-02-30", "2027-02-29", "2026-13-01", "2026-1-01", "26-11-30", "2026-11-30T00:00", "", "２０２６-11-30", "2026-00-10"] {
            #expect(Timestamp(date: bad) == nil, "\(bad)")
        }
    }

    @Test("User IDs are exactly 12 digits")
    func userIDs() throws {
        #expect(try UserID("555254600106").rawValue == "555254600106")
        for bad in ["", "55525460010", "5552546001066", "55525460010a", " 555254600106", "５５５２５４６００１０６"] {
            #expect(throws: CardDeskError.self, "\(bad)") { try UserID(bad) }
        }
    }

    @Test("Roles parse from CODE@ORG and refuse anything else")
    func roles() throws {
        let role = try Role(parsing: "S0080:G0450:R5080@RBQ")
        #expect(role.code == "S0080:G0450:R5080")
        #expect(role.organisation == "RBQ")
        #expect(role.description == "S0080:G0450:R5080@RBQ")
        for bad in ["S0080:G0450:R5080", "@RBQ", "S0080@", "S0080:G0450@R B", "S0080;DROP@RBQ", "a@b@c"] {
            let error = #expect(throws: CardDeskError.self, "\(bad)") { try Role(parsing: bad) }
            #expect(error?.code == .invalidInput)
        }
    }

    @Test("The certificate common name is <id>_<Given>_<Family>")
    func commonName() throws {
        let user = try User(id: try UserID("555254600106"), givenName: "Mary Ann", familyName: "O'Neil-Smith", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")])
        #expect(user.certificateCommonName == "555254600106_Mary-Ann_O'Neil-Smith")
        #expect(throws: CardDeskError.self) {
            try User(id: try UserID("555254600106"), givenName: "Jane", familyName: "Doe", organisation: "RBQ", roles: [])
        }
        #expect(throws: CardDeskError.self) {
            try User(id: try UserID("555254600106"), givenName: "Jane<script>", familyName: "Doe", organisation: "RBQ", roles: [try Role(parsing: "R8000@RBQ")])
        }
    }

    @Test("Serial numbers read as openssl prints them and compare canonically")
    func serials() throws {
        let serial = try SerialNumber(hex: "serial=0829B0EBBB4F935AEAA1C2232818EE9C53114F2C")
        #expect(serial.hex == "0829B0EBBB4F935AEAA1C2232818EE9C53114F2C".drop(while: { $0 == "0" }).description.leftPadded)
        #expect(try SerialNumber(hex: "00ab") == SerialNumber(hex: "AB"))
        #expect(try SerialNumber(hex: "0x0a:bc") == SerialNumber(bytes: [0x0A, 0xBC]))
        #expect(try SerialNumber(hex: "abc").bytes == [0x0A, 0xBC])
        for bad in ["", "xyz", "12 34", String(repeating: "A", count: 65)] {
            #expect(throws: CardDeskError.self, "\(bad)") { try SerialNumber(hex: bad) }
        }
    }

    @Test("Revocation reasons use RFC 5280 names and codes")
    func reasons() throws {
        #expect(try RevocationReason(parsing: "keyCompromise") == .keyCompromise)
        #expect(try RevocationReason(parsing: "SUPERSEDED").rawValue == 4)
        #expect(throws: CardDeskError.self) { try RevocationReason(parsing: "removeFromCRL") }
        #expect(throws: CardDeskError.self) { try RevocationReason(parsing: "lost") }
    }

    @Test("Timestamps print as ISO 8601 UTC")
    func timestamps() {
        #expect(Timestamp(secondsSince1970: 0).description == "1970-01-01T00:00:00Z")
        #expect(Timestamp(secondsSince1970: 1_798_502_400).description == "2026-12-29T00:00:00Z")
        #expect(Timestamp(secondsSince1970: 951_782_400).dateDescription == "2000-02-29")
        #expect(Timestamp(secondsSince1970: -1).description == "1969-12-31T23:59:59Z")
    }
}

extension String {
    /// Even number of hex digits, as a byte string prints.
    fileprivate var leftPadded: String { count % 2 == 1 ? "0" + self : self }
}
