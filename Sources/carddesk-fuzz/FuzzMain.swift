import Foundation
#if CARDDESK_LIBFUZZER
import CLibFuzzerDriver
#endif

/// `carddesk-fuzz TARGET [DIR|FILE ...]`.
///
/// Built normally, it replays inputs (the checked-in seed corpus, or a crash libFuzzer saved) through a target and
/// fails on the first one that the target rejects. Built for fuzzing (`scripts/fuzz`: `-sanitize=fuzzer,address`
/// and `-D CARDDESK_LIBFUZZER`), it hands the remaining arguments to libFuzzer, which mutates the inputs guided by
/// coverage. Targets: csr, ocsp-request, crl, ocsp-response, json, forms.
@main
enum FuzzMain {
    static func main() {
        var arguments = CommandLine.arguments
        guard arguments.count >= 2, let target = FuzzTargets.all[arguments[1]] else {
            FileHandle.standardError.write(Data("usage: carddesk-fuzz TARGET [libFuzzer options] [CORPUS ...]; targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
            exit(64)
        }
        selected = target
        arguments.remove(at: 1)
        #if CARDDESK_LIBFUZZER
        var argc = Int32(arguments.count)
        var cStrings: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let status = cStrings.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
                selected?(Array(UnsafeBufferPointer(start: data, count: size)))
                return 0
            }
        }
        exit(status)
        #else
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("\(path): no such file or folder\n".utf8))
                exit(66)
            }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                target(Array(data))
                count += 1
            }
        }
        print("\(CommandLine.arguments[1]): \(count) inputs replayed, none rejected")
        #endif
    }
}

/// The target this process runs (libFuzzer calls back through a C function pointer, which cannot capture).
nonisolated(unsafe) private var selected: (@Sendable ([UInt8]) -> Void)?
