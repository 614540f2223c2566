#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing files that hold secrets (virtual cards, the master key, sealed CA keys, the database) so that no other
/// user can read them at any moment: each file is created with mode 0600 from its first byte (open with
/// `O_CREAT | O_EXCL` and that mode, whatever the umask), written, flushed, and then renamed over the old one; folders
/// are created 0700. The one piece of file I/O in this module, kept here so every writer shares it.
public enum SecretFile {
    /// Restricts every file and folder this process creates to its own user (umask 077). Both executables call it
    /// first thing; `write` does not rely on it.
    public static func restrictProcessUmask() {
        umask(0o077)
    }

    /// Replaces `path` with `bytes` in one step (a reader sees the old contents or the new, never a mix).
    public static func write(_ bytes: [UInt8], to path: String, mode: UInt32 = 0o600) throws(CardDeskError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let name = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        var random = SystemRandomNumberGenerator()
        let temporary = "\(directory.isEmpty ? "/" : directory)/.\(name).\(String(random.next(), radix: 16)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard descriptor >= 0 else {
            throw CardDeskError(.configuration, "Cannot create \(path): \(errorText()). Check that its folder exists and is writable.")
        }
        var failed = fchmod(descriptor, mode_t(mode)) != 0
        var offset = 0
        while !failed, offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                failed = true
            } else {
                offset += written
            }
        }
        if !failed { failed = fsync(descriptor) != 0 }
        let reason = errorText()
        close(descriptor)
        guard !failed, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CardDeskError(.configuration, "Cannot write \(path): \(failed ? reason : errorText()).")
        }
        // The rename itself is made durable with the folder.
        let folder = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            fsync(folder)
            close(folder)
        }
    }

    /// Creates `path` with `bytes` only if it does not exist yet (two processes starting at once never both create
    /// it): written under a temporary name, then linked into place, which fails when the name is taken. Answers
    /// false when the file already existed.
    @discardableResult
    public static func createNew(_ bytes: [UInt8], at path: String) throws(CardDeskError) -> Bool {
        let temporary = path + ".new-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try write(bytes, to: temporary)
        defer { unlink(temporary) }
        if link(temporary, path) == 0 { return true }
        if errno == EEXIST { return false }
        throw CardDeskError(.configuration, "Cannot create \(path): \(errorText()).")
    }

    /// Creates `path` (and missing parents) with mode 0700, or tightens an existing folder to 0700.
    public static func createDirectory(_ path: String) throws(CardDeskError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0, errno != EEXIST {
                throw CardDeskError(.configuration, "Cannot create the folder \(current): \(errorText()).")
            }
        }
        guard chmod(path, 0o700) == 0 else {
            throw CardDeskError(.configuration, "Cannot restrict the folder \(path) to its owner: \(errorText()).")
        }
    }

    private static func systemWrite(_ descriptor: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(descriptor, pointer, count)
        #else
        Darwin.write(descriptor, pointer, count)
        #endif
    }

    private static func errorText() -> String {
        String(cString: strerror(errno))
    }
}
