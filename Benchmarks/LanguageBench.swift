import Foundation
import Workbench

// The command language: start-up time of `nsae run` on a one-line script (goal < 100 ms), and the parse rate of a
// large script. The start-up case runs the `nsae` binary built beside this one
// (`swift build -c release --product nsae` first).

func runLanguageBench(_ options: BenchOptions) throws {
    try benchStartup(options)
    try benchParse(options)
}

private func benchStartup(_ options: BenchOptions) throws {
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("nsae")
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
        throw BenchError("language: \(binary.path) is missing; build it first with `swift build -c release --product nsae`")
    }
    let script = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-bench-\(getpid()).nsae")
    try "echo \"hello\"\n".write(to: script, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: script) }
    var failure: String?
    let seconds = try medianSeconds(warmup: 2, repeats: options.quick ? 10 : 40) {
        let process = Process()
        process.executableURL = binary
        process.arguments = ["run", script.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus != 0 || text != "hello\n" { failure = "exit \(process.terminationStatus), output \(text.debugDescription)" }
    }
    if let failure { throw BenchError("language: `nsae run` on a one-line script failed: \(failure)") }
    BenchResult(bench: "language", caseName: "nsae run one-line script (startup)", metric: "ms", value: seconds * 1000,
                extra: ["goal_ms": 100]).emit(options)
}

private func benchParse(_ options: BenchOptions) throws {
    let templates = [
        "acts = harvest gpt2 web hook=mlp_out layers=0..11 tokens=2M context=128 out=\"acts/gpt2-mlp\"",
        "norm = sae nsae acts expansion=16 alpha=1e-6 sigma=1 noise=always mse=mean # the NSAE",
        "train norm acts tokens=2M batch=4096 lr=1e-3 warmup=100 log_every=100 \\\n    checkpoint=\"ckpt/norm\"",
        "toy = synth d=64 features=512 active=5 layers=4 norms=[1, 4, 16, 64] tokens=200k seed=1 out=\"/tmp/toy\"",
        "echo \"a \\\"quoted\\\" string with \\t escapes\\n\"",
        "top norm acts layer=5 feature=123 k=20 context=8",
        "",
    ]
    let statements = options.quick ? 20_000 : 200_000
    var source = ""
    for i in 0..<statements { source += templates[i % templates.count] + "\n" }
    let bytes = Double(source.utf8.count)
    let session = Session()
    let verbs = Set(session.verbNames)
    var parsed = 0
    let seconds = try medianSeconds(warmup: 1, repeats: options.quick ? 3 : 5) {
        var parser = Parser(source, isVerb: verbs.contains)
        parsed = try parser.parseAll().count
    }
    BenchResult(bench: "language", caseName: "parse \(statements / 1000)k statements", metric: "mb_per_s",
                value: bytes / seconds / 1e6,
                extra: ["statements_per_s": Int(Double(parsed) / seconds), "mb": Int(bytes / 1e6)]).emit(options)
}

private struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
