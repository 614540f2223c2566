public import CardDeskCore
public import CPKCS11
import Foundation
import Synchronization

/// An HSM vendor's PKCS#11 module (SoftHSMv2, Thales, Entrust, YubiHSM, a cloud HSM's library), loaded with `dlopen`
/// and initialised once per process for use from many threads (`CKF_OS_LOCKING_OK`).
public final class PKCS11Module: @unchecked Sendable {
    // @unchecked: the function list is immutable after loading, and the module was initialised for OS locking, so
    // every function may be called from any thread (a session is still used by one caller at a time: `PKCS11Session`).
    public let path: String
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    private let library: UnsafeMutableRawPointer

    private static let loaded = Mutex<[String: PKCS11Module]>([:])

    /// The module at `path`, loaded and initialised the first time it is asked for (PKCS#11 allows one
    /// `C_Initialize` per process).
    public static func load(path: String) throws(CardDeskError) -> PKCS11Module {
        let result: Result<PKCS11Module, CardDeskError> = loaded.withLock { modules in
            if let module = modules[path] { return .success(module) }
            do throws(CardDeskError) {
                let module = try PKCS11Module(path: path)
                modules[path] = module
                return .success(module)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private init(path: String) throws(CardDeskError) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CardDeskError(.configuration, "The PKCS#11 module \(path) does not exist. Give the path of your HSM vendor's PKCS#11 library (for SoftHSMv2: /usr/lib/softhsm/libsofthsm2.so).")
        }
        guard let library = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw CardDeskError(.configuration, "The PKCS#11 module \(path) could not be loaded: \(reason)")
        }
        guard let symbol = dlsym(library, "C_GetFunctionList") else {
            dlclose(library)
            throw CardDeskError(.configuration, "\(path) is not a PKCS#11 module (it has no C_GetFunctionList).")
        }
        typealias GetFunctionList = @convention(c) (UnsafeMutablePointer<UnsafeMutablePointer<CK_FUNCTION_LIST>?>?) -> CK_RV
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        let rv = unsafeBitCast(symbol, to: GetFunctionList.self)(&list)
        guard rv == CKR_OK, let list else {
            dlclose(library)
            throw CardDeskError(.configuration, "The PKCS#11 module \(path) gave no function list (\(PKCS11Error.name(rv))).")
        }
        var arguments = CK_C_INITIALIZE_ARGS()
        arguments.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        let initialised = withUnsafeMutablePointer(to: &arguments) { list.pointee.C_Initialize(UnsafeMutableRawPointer($0)) }
        guard initialised == CKR_OK || initialised == CKR_CRYPTOKI_ALREADY_INITIALIZED else {
            dlclose(library)
            throw CardDeskError(.configuration, "The PKCS#11 module \(path) did not initialise (\(PKCS11Error.name(initialised))).")
        }
        self.path = path
        self.library = library
        self.functions = list
    }

    /// The slot holding the token labelled `label`; nil when no such token is present.
    public func slot(tokenLabel label: String) throws(CardDeskError) -> CK_SLOT_ID? {
        for slot in try slots() {
            var info = CK_TOKEN_INFO()
            guard functions.pointee.C_GetTokenInfo(slot, &info) == CKR_OK else { continue }
            if Self.text(info.label) == label { return slot }
        }
        return nil
    }

    private func slots() throws(CardDeskError) -> [CK_SLOT_ID] {
        var count: CK_ULONG = 0
        try check(functions.pointee.C_GetSlotList(CK_BBOOL(CK_TRUE), nil, &count), "C_GetSlotList")
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try check(functions.pointee.C_GetSlotList(CK_BBOOL(CK_TRUE), &slots, &count), "C_GetSlotList")
        return Array(slots.prefix(Int(count)))
    }

    /// A session on `slot` (read-write: key generation needs it; signing does not mind).
    public func openSession(slot: CK_SLOT_ID) throws(CardDeskError) -> PKCS11Session {
        var handle: CK_SESSION_HANDLE = 0
        try check(functions.pointee.C_OpenSession(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &handle), "C_OpenSession")
        return PKCS11Session(module: self, handle: handle)
    }

    func check(_ rv: CK_RV, _ function: String) throws(CardDeskError) {
        guard rv == CKR_OK else { throw PKCS11Error(rv: rv, function: function, module: path).cardDeskError }
    }

    /// A fixed-width, space-padded PKCS#11 text field.
    static func text<T>(_ field: T) -> String {
        withUnsafeBytes(of: field) { bytes in
            String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces.union(.controlCharacters))
        }
    }
}
