import Foundation
#if CARDDESK_LIBFUZZER
import CLibFuzzerDriver
#endif

/// Built normally: `carddesk-fuzz TARGET [DIR|FILE ...]` replays inputs (the checked-in seed corpus, or a crash
/// libFuzzer saved) through a target and fails on the first one the target rejects.
///
/// Built for fuzzing (`scripts/fuzz`: `-sanitize=fuzzer,address -D CARDDESK_LIBFUZZER`), it hands its arguments
/// (libFuzzer's options and corpus folders) to libFuzzer's driver, which calls `LLVMFuzzerTestOneInput` below for
/// each input, on the target named by `CARDDESK_FUZZ_TARGET`.
/// Targets: csr, ocsp-request, crl, ocsp-response, json, forms.
@main
enum FuzzMain {
    static func main() {
        #if CARDDESK_LIBFUZZER
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
        #else
        replay()
        #endif
    }

    static func replay() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, let target = FuzzTargets.all[arguments[1]] else {
            FileHandle.standardError.write(Data("usage: carddesk-fuzz TARGET [DIR|FILE ...]; targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
            exit(64)
        }
        var count = 0
        for path in arguments.dropFirst(2) {
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
        print("\(arguments[1]): \(count) inputs replayed, none rejected")
    }
}

#if CARDDESK_LIBFUZZER
/// The target of this fuzzing process, from `CARDDESK_FUZZ_TARGET`.
private let fuzzedTarget: @Sendable ([UInt8]) -> Void = {
    let name = ProcessInfo.processInfo.environment["CARDDESK_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.all[name] else {
        FileHandle.standardError.write(Data("Set CARDDESK_FUZZ_TARGET to one of: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(64)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzedTarget(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#endif
