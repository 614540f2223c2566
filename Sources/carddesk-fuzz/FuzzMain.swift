import Foundation
#if CARDDESK_LIBFUZZER
import CLibFuzzerDriver
#endif

/// Built normally: `carddesk-fuzz TARGET [DIR|FILE ...]` replays inputs (the checked-in seed corpus, or a crash
/// libFuzzer saved) through a target and fails on the first one the target rejects. With `--mutate SECONDS` first, it
/// then runs random mutations of those inputs through the target for that long (`Mutator`): no coverage guidance
/// and no sanitizer, but no second build either (what CI runs).
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
        var paths = arguments.dropFirst(2)
        var mutateSeconds: Double?
        if paths.first == "--mutate" {
            guard paths.count >= 2, let seconds = Double(paths[paths.startIndex + 1]), seconds > 0 else {
                FileHandle.standardError.write(Data("usage: carddesk-fuzz TARGET --mutate SECONDS DIR|FILE ...\n".utf8))
                exit(64)
            }
            mutateSeconds = seconds
            paths = paths.dropFirst(2)
        }
        var inputs: [[UInt8]] = []
        for path in paths {
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
                inputs.append(Array(data))
            }
        }
        print("\(arguments[1]): \(inputs.count) inputs replayed, none rejected")
        if let mutateSeconds {
            let executions = Mutator(target: target, name: arguments[1], inputs: inputs).run(seconds: mutateSeconds)
            print("\(arguments[1]): \(executions) mutated inputs in \(Int(mutateSeconds)) s, none rejected")
        }
    }
}

/// Random mutations of a corpus through a target: a bit flipped, a byte set to an edge value, bytes inserted,
/// deleted or repeated, a length-like byte changed, or two inputs spliced; one to four at a time. Each input is written
/// to `.build/fuzz-mutation/TARGET.input` before it runs, so a crash leaves it there to replay and add to the seeds.
struct Mutator {
    let target: @Sendable ([UInt8]) -> Void
    let name: String
    let inputs: [[UInt8]]

    func run(seconds: Double) -> Int {
        let folder = ".build/fuzz-mutation"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let descriptor = open("\(folder)/\(name).input", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(descriptor) }
        var generator = SystemRandomNumberGenerator()
        let corpus = inputs.isEmpty ? [[]] : inputs
        let end = Date().addingTimeInterval(seconds)
        var executions = 0
        while executions % 64 != 0 || Date() < end {
            var input = corpus.randomElement(using: &generator)!
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                mutate(&input, corpus: corpus, using: &generator)
            }
            if descriptor >= 0 {
                _ = ftruncate(descriptor, 0)
                _ = input.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
            }
            target(input)
            executions += 1
        }
        return executions
    }

    func mutate(_ input: inout [UInt8], corpus: [[UInt8]], using generator: inout SystemRandomNumberGenerator) {
        let edges: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0xFF]
        guard !input.isEmpty else {
            input = (0..<Int.random(in: 1...16, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            return
        }
        let at = Int.random(in: 0..<input.count, using: &generator)
        switch Int.random(in: 0..<6, using: &generator) {
        case 0: input[at] ^= 1 << UInt8.random(in: 0...7, using: &generator)
        case 1: input[at] = edges.randomElement(using: &generator)!
        case 2: input.insert(contentsOf: (0..<Int.random(in: 1...8, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }, at: at)
        case 3: input.removeSubrange(at..<min(input.count, at + Int.random(in: 1...16, using: &generator)))
        case 4:
            let length = min(input.count - at, Int.random(in: 1...32, using: &generator))
            input.insert(contentsOf: input[at..<(at + length)], at: at)
        default:
            let other = corpus.randomElement(using: &generator)!
            guard !other.isEmpty else { return }
            let from = Int.random(in: 0..<other.count, using: &generator)
            input = Array(input[..<at]) + other[from...]
        }
        if input.count > 8192 { input.removeLast(input.count - 8192) }
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
