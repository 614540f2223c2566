public import CardDeskCore
public import CPKCS11
import Synchronization

/// One token (by label) in a module, logged in with its PIN, with a pool of sessions so that signing runs
/// concurrently: each caller gets a session of its own for the length of one operation.
///
/// When the token goes away (the module answers `CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, a dead session...),
/// every session is dropped and the caller gets `hsmUnavailable`; the next operation looks for the token again, and
/// works as soon as it is back. Nothing needs a restart.
public final class PKCS11Token: Sendable {
    public let module: PKCS11Module
    public let label: String
    /// Kept to log in again when the token comes back.
    private let pin: String

    private struct State {
        var slot: CK_SLOT_ID?
        var idle: [PKCS11Session] = []
        /// Bumped whenever the token is found gone: sessions and key handles of an older generation are not reused.
        var generation = 0
        var keys: [[UInt8]: CK_OBJECT_HANDLE] = [:]
    }

    private let state = Mutex(State())
    /// How many idle sessions are kept open.
    let idleLimit: Int

    public init(module: PKCS11Module, label: String, pin: String, idleLimit: Int = 8) {
        self.module = module
        self.label = label
        self.pin = pin
        self.idleLimit = idleLimit
    }

    /// Runs `body` with a logged-in session of its own.
    public func withSession<R>(_ body: (PKCS11Session) throws(CardDeskError) -> R) throws(CardDeskError) -> R {
        let (session, generation) = try checkOut()
        do {
            let result = try body(session)
            checkIn(session, generation: generation)
            return result
        } catch {
            if error.code == .hsmUnavailable {
                lost(generation)
                session.close()
            } else {
                checkIn(session, generation: generation)
            }
            throw error
        }
    }

    /// The private key whose `CKA_ID` is `id` (looked up once per generation).
    public func privateKey(id: [UInt8], in session: PKCS11Session) throws(CardDeskError) -> CK_OBJECT_HANDLE {
        if let known = state.withLock({ $0.keys[id] }) { return known }
        let found = try session.find(objectClass: CK_OBJECT_CLASS(CKO_PRIVATE_KEY), id: id)
        guard let key = found.first else {
            throw CardDeskError(.configuration, "The token \"\(label)\" holds no private key with ID \(Hex.string(id, lowercase: true)). Was the data directory's pki made with another token?")
        }
        state.withLock { $0.keys[id] = key }
        return key
    }

    /// The public key object whose `CKA_ID` is `id`.
    public func publicKey(id: [UInt8], in session: PKCS11Session) throws(CardDeskError) -> CK_OBJECT_HANDLE? {
        try session.find(objectClass: CK_OBJECT_CLASS(CKO_PUBLIC_KEY), id: id).first
    }

    private func checkOut() throws(CardDeskError) -> (PKCS11Session, Int) {
        let (idle, slot, generation) = state.withLock { state in
            (state.idle.popLast(), state.slot, state.generation)
        }
        if let idle { return (idle, generation) }
        let found: CK_SLOT_ID
        if let slot {
            found = slot
        } else {
            guard let present = try module.slot(tokenLabel: label) else {
                throw CardDeskError(.hsmUnavailable, "The HSM token \"\(label)\" is not present (module \(module.path)). Certificates and status answers resume by themselves when it is back.")
            }
            found = present
            state.withLock { if $0.generation == generation { $0.slot = present } }
        }
        let session = try module.openSession(slot: found)
        do {
            try session.login(pin: pin)
        } catch {
            session.close()
            if error.code == .hsmUnavailable { lost(generation) }
            throw error
        }
        return (session, generation)
    }

    private func checkIn(_ session: PKCS11Session, generation: Int) {
        let keep = state.withLock { state -> Bool in
            guard state.generation == generation, state.idle.count < idleLimit else { return false }
            state.idle.append(session)
            return true
        }
        if !keep { session.close() }
    }

    /// The token was found gone while on `generation`: forget its slot, sessions and handles.
    private func lost(_ generation: Int) {
        let dropped = state.withLock { state -> [PKCS11Session] in
            guard state.generation == generation else { return [] }
            state.generation += 1
            state.slot = nil
            state.keys = [:]
            defer { state.idle = [] }
            return state.idle
        }
        for session in dropped { session.close() }
    }
}
