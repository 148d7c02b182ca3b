// Benchmarks: `swift run -c release Benchmarks NAME [--quick] [--json] [--case=TEXT]`, NAME one of the keys of `suites` or `all`.
// Human table on stdout; with --json one JSON object per case (see ../shared/design/nsae.md §6).
import Foundation
import Tensor

let suites: [(name: String, run: (BenchOptions) throws -> Void)] = [
    ("matmul", runMatmulBench),
    ("language", runLanguageBench),
    ("sae", runSAEBench), ("sae-density", runSAEDensityBench), ("sae-sweep", runSweepBench),
    ("harvest", runHarvestBench), ("topk", runTopKBench), ("scan", runScanBench),
    ("tokenizer", runTokenizerBench), ("gpt2", runGPT2Bench),
    // Each module's benchmark registers here: ("tokenizer", …), ("gpt2", …), ("harvest", …), ("sae", …),
    // ("topk", …), ("kernel", …).
]

var args = Array(CommandLine.arguments.dropFirst())
let options = BenchOptions(quick: args.contains("--quick"), json: args.contains("--json"),
                           caseFilter: args.first { $0.hasPrefix("--case=") }.map { String($0.dropFirst("--case=".count)) },
                           onlyPath: args.first { $0.hasPrefix("--path=") }.map { String($0.dropFirst("--path=".count)) })
args.removeAll { $0.hasPrefix("--") }
let wanted = args.first ?? "all"
let selected = wanted == "all" ? suites : suites.filter { $0.name == wanted }
if selected.isEmpty {
    FileHandle.standardError.write("unknown benchmark '\(wanted)'; choose one of: \(suites.map(\.name).joined(separator: ", ")), all\n".data(using: .utf8)!)
    exit(2)
}
for suite in selected {
    do { try suite.run(options) } catch {
        FileHandle.standardError.write("benchmark \(suite.name) failed: \(error)\n".data(using: .utf8)!)
        exit(1)
    }
}
