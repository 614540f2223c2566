public import CardDeskCore
public import CPKCS11

/// One PKCS#11 session: used by one caller at a time (`PKCS11Pool` hands them out).
public struct PKCS11Session: Sendable {
    let module: PKCS11Module
    public let handle: CK_SESSION_HANDLE
    private var functions: CK_FUNCTION_LIST { module.functions.pointee }

    /// Logs the application in as the token's user (once per token: every session of this process shares it).
    public func login(pin: String) throws(CardDeskError) {
        var bytes = Array(pin.utf8)
        let rv = functions.C_Login(handle, CK_USER_TYPE(CKU_USER), &bytes, CK_ULONG(bytes.count))
        guard rv != CKR_USER_ALREADY_LOGGED_IN else { return }
        if rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_LOCKED {
            throw CardDeskError(.configuration, "The HSM refused the PIN (\(PKCS11Error.name(rv))). Check the PIN file or CARDDESK_CA_PKCS11_PIN.")
        }
        try module.check(rv, "C_Login")
    }

    public func close() {
        _ = functions.C_CloseSession(handle)
    }

    /// The objects of class `objectClass` whose `CKA_ID` is `id` (and `CKA_LABEL` is `label`, when given).
    public func find(objectClass: CK_OBJECT_CLASS, id: [UInt8]? = nil, label: String? = nil) throws(CardDeskError) -> [CK_OBJECT_HANDLE] {
        var template = AttributeList()
        template.add(CK_ATTRIBUTE_TYPE(CKA_CLASS), value: objectClass)
        if let id { template.add(CK_ATTRIBUTE_TYPE(CKA_ID), bytes: id) }
        if let label { template.add(CK_ATTRIBUTE_TYPE(CKA_LABEL), bytes: Array(label.utf8)) }
        return try template.withAttributes { attributes, count throws(CardDeskError) in
            try module.check(functions.C_FindObjectsInit(handle, attributes, count), "C_FindObjectsInit")
            defer { _ = functions.C_FindObjectsFinal(handle) }
            var found: [CK_OBJECT_HANDLE] = []
            var batch = [CK_OBJECT_HANDLE](repeating: 0, count: 16)
            while true {
                var returned: CK_ULONG = 0
                try module.check(functions.C_FindObjects(handle, &batch, CK_ULONG(batch.count), &returned), "C_FindObjects")
                guard returned > 0 else { return found }
                found += batch.prefix(Int(returned))
            }
        }
    }

    /// The value of one attribute; nil when the token will not reveal it (`CKR_ATTRIBUTE_SENSITIVE`) or the object
    /// has no such attribute.
    public func attribute(_ type: CK_ATTRIBUTE_TYPE, of object: CK_OBJECT_HANDLE) throws(CardDeskError) -> [UInt8]? {
        var attribute = CK_ATTRIBUTE(type: type, pValue: nil, ulValueLen: 0)
        let rv = functions.C_GetAttributeValue(handle, object, &attribute, 1)
        if rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID { return nil }
        try module.check(rv, "C_GetAttributeValue")
        guard attribute.ulValueLen != CK_ULONG.max else { return nil }  // CK_UNAVAILABLE_INFORMATION
        var value = [UInt8](repeating: 0, count: Int(attribute.ulValueLen))
        let read = value.withUnsafeMutableBytes { buffer in
            var attribute = CK_ATTRIBUTE(type: type, pValue: buffer.baseAddress, ulValueLen: CK_ULONG(buffer.count))
            return functions.C_GetAttributeValue(handle, object, &attribute, 1)
        }
        try module.check(read, "C_GetAttributeValue")
        return value
    }

    /// A boolean attribute (`CKA_SENSITIVE`, `CKA_EXTRACTABLE`, ...).
    public func flag(_ type: CK_ATTRIBUTE_TYPE, of object: CK_OBJECT_HANDLE) throws(CardDeskError) -> Bool? {
        try attribute(type, of: object).map { $0.first == UInt8(CK_TRUE) }
    }

    /// Generates a key pair inside the token: the private key is a token object, private, sensitive and never
    /// extractable, usable only to sign; the public key is a token object that anyone may read.
    public func generateKeyPair(_ kind: PKCS11KeyKind, label: String, id: [UInt8]) throws(CardDeskError) -> (publicKey: CK_OBJECT_HANDLE, privateKey: CK_OBJECT_HANDLE) {
        var publicTemplate = AttributeList()
        var privateTemplate = AttributeList()
        for template in [0, 1] {
            var list = AttributeList()
            list.add(CK_ATTRIBUTE_TYPE(CKA_TOKEN), flag: true)
            list.add(CK_ATTRIBUTE_TYPE(CKA_LABEL), bytes: Array(label.utf8))
            list.add(CK_ATTRIBUTE_TYPE(CKA_ID), bytes: id)
            if template == 0 {
                list.add(CK_ATTRIBUTE_TYPE(CKA_VERIFY), flag: true)
                list.add(CK_ATTRIBUTE_TYPE(CKA_PRIVATE), flag: false)
                list.add(CK_ATTRIBUTE_TYPE(CKA_ENCRYPT), flag: false)
                list.add(CK_ATTRIBUTE_TYPE(CKA_WRAP), flag: false)
                switch kind {
                case .ec(let curve): list.add(CK_ATTRIBUTE_TYPE(CKA_EC_PARAMS), bytes: curve.namedCurveDER)
                case .rsa(let bits):
                    list.add(CK_ATTRIBUTE_TYPE(CKA_MODULUS_BITS), value: CK_ULONG(bits))
                    list.add(CK_ATTRIBUTE_TYPE(CKA_PUBLIC_EXPONENT), bytes: [0x01, 0x00, 0x01])
                }
                publicTemplate = list
            } else {
                list.add(CK_ATTRIBUTE_TYPE(CKA_PRIVATE), flag: true)
                list.add(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), flag: true)
                list.add(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), flag: false)
                list.add(CK_ATTRIBUTE_TYPE(CKA_SIGN), flag: true)
                list.add(CK_ATTRIBUTE_TYPE(CKA_DECRYPT), flag: false)
                list.add(CK_ATTRIBUTE_TYPE(CKA_UNWRAP), flag: false)
                list.add(CK_ATTRIBUTE_TYPE(CKA_DERIVE), flag: false)
                privateTemplate = list
            }
        }
        var mechanism = CK_MECHANISM(mechanism: kind.generationMechanism, pParameter: nil, ulParameterLen: 0)
        var publicKey: CK_OBJECT_HANDLE = 0
        var privateKey: CK_OBJECT_HANDLE = 0
        try publicTemplate.withAttributes { publicAttributes, publicCount throws(CardDeskError) in
            try privateTemplate.withAttributes { privateAttributes, privateCount throws(CardDeskError) in
                try module.check(
                    functions.C_GenerateKeyPair(handle, &mechanism, publicAttributes, publicCount, privateAttributes, privateCount, &publicKey, &privateKey),
                    "C_GenerateKeyPair"
                )
            }
        }
        return (publicKey, privateKey)
    }

    /// Signs `data` with `key` using `mechanism` (for ECDSA, `data` is the hash and the answer is r‖s).
    public func sign(_ data: [UInt8], with key: CK_OBJECT_HANDLE, mechanism type: CK_MECHANISM_TYPE) throws(CardDeskError) -> [UInt8] {
        var mechanism = CK_MECHANISM(mechanism: type, pParameter: nil, ulParameterLen: 0)
        try module.check(functions.C_SignInit(handle, &mechanism, key), "C_SignInit")
        var input = data
        var length: CK_ULONG = 0
        try module.check(functions.C_Sign(handle, &input, CK_ULONG(input.count), nil, &length), "C_Sign")
        var signature = [UInt8](repeating: 0, count: Int(length))
        try module.check(functions.C_Sign(handle, &input, CK_ULONG(input.count), &signature, &length), "C_Sign")
        return Array(signature.prefix(Int(length)))
    }
}

/// The key types a CA key may have in a token.
public enum PKCS11KeyKind: Hashable, Sendable {
    public enum Curve: String, Hashable, Sendable {
        case p256, p384

        /// The curve's OID as DER, for `CKA_EC_PARAMS`.
        var namedCurveDER: [UInt8] {
            switch self {
            case .p256: [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
            case .p384: [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]
            }
        }
    }

    case ec(Curve)
    case rsa(bits: Int)

    var generationMechanism: CK_MECHANISM_TYPE {
        switch self {
        case .ec: CK_MECHANISM_TYPE(CKM_EC_KEY_PAIR_GEN)
        case .rsa: CK_MECHANISM_TYPE(CKM_RSA_PKCS_KEY_PAIR_GEN)
        }
    }
}

/// A PKCS#11 attribute template whose values live as long as the list.
struct AttributeList {
    private var entries: [(type: CK_ATTRIBUTE_TYPE, value: [UInt8])] = []

    mutating func add(_ type: CK_ATTRIBUTE_TYPE, bytes: [UInt8]) {
        entries.append((type, bytes))
    }

    mutating func add<T>(_ type: CK_ATTRIBUTE_TYPE, value: T) {
        entries.append((type, withUnsafeBytes(of: value) { Array($0) }))
    }

    mutating func add(_ type: CK_ATTRIBUTE_TYPE, flag: Bool) {
        entries.append((type, [flag ? UInt8(CK_TRUE) : UInt8(CK_FALSE)]))
    }

    func withAttributes<R>(_ body: (UnsafeMutablePointer<CK_ATTRIBUTE>, CK_ULONG) throws(CardDeskError) -> R) throws(CardDeskError) -> R {
        // Every value is copied into one buffer that outlives the call.
        let total = entries.reduce(0) { $0 + $1.value.count }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 8)
        defer { storage.deallocate() }
        let attributes = UnsafeMutablePointer<CK_ATTRIBUTE>.allocate(capacity: max(entries.count, 1))
        defer { attributes.deallocate() }
        var offset = 0
        for (index, entry) in entries.enumerated() {
            let place = storage + offset
            entry.value.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { place.copyMemory(from: base, byteCount: bytes.count) }
            }
            attributes[index] = CK_ATTRIBUTE(type: entry.type, pValue: place, ulValueLen: CK_ULONG(entry.value.count))
            offset += entry.value.count
        }
        return try body(attributes, CK_ULONG(entries.count))
    }
}
