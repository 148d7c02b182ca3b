// Benchmarks: `swift run -c release Benchmarks NAME [--quick] [--json] [--case=TEXT] …`, NAME one of the names in
// `BenchmarkSuites.all` or `all`. Human table on stdout; with --json one JSON object per case (see ../shared/design/nsae.md §6).
// Options are parsed by swift-argument-parser, as the nsae CLI's: one a benchmark does not read, or a value it
// cannot use, is refused by name before anything runs.
import ArgumentParser
import Foundation
import Tensor

/// Each benchmark, by the name it is run by.
enum BenchmarkSuites {
    static let all: [(name: String, run: @Sendable (BenchOptions) throws -> Void)] = [
    ("matmul", runMatmulBench),
    ("language", runLanguageBench),
    ("sae", runSAEBench), ("sae-density", runSAEDensityBench), ("sae-sweep", runSweepBench),
    ("harvest", runHarvestBench), ("topk", runTopKBench), ("scan", runScanBench),
    ("tokenizer", runTokenizerBench), ("gpt2", runGPT2Bench),
    ]
}

enum TimedPath: String, ExpressibleByArgument, CaseIterable { case sparse, dense }

struct BenchmarksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "Benchmarks",
        abstract: "nsae's benchmarks, with their peers (numpy, PyTorch) run in the same invocation.",
        discussion: "Run in release: swift run -c release Benchmarks NAME. The README's Benchmarks section lists what each measures.")

    @Argument(help: ArgumentHelp("The benchmark to run: \(BenchmarkSuites.all.map(\.name).joined(separator: ", ")) or all.", valueName: "name"))
    var name = "all"
    @Flag(help: "Smaller sizes and fewer repetitions (and no PyTorch peer).")
    var quick = false
    @Flag(help: "One JSON object per case instead of the tables.")
    var json = false
    @Option(name: .customLong("case"), help: ArgumentHelp("Only the cases whose name contains TEXT.", valueName: "TEXT"))
    var caseFilter: String?
    @Option(help: "sae-density: time only this step path (sparse or dense), for profiling one path.")
    var path: TimedPath?
    @Option(help: ArgumentHelp("sae-density: the dictionary sizes, comma-separated (default 6144, and 24576 without --quick).", valueName: "N[,N…]"))
    var dsae: String?
    @Option(help: ArgumentHelp("sae-density: the L0 targets in percent of the features, comma-separated (default 1,5,10,25,50), e.g. --l0=15,20 to find the crossover.", valueName: "PCT[,PCT…]"))
    var l0: String?
    @Option(help: "sae-density: rounds of the cases and the peers, then a table of each side's best (1 to 100).")
    var rounds = 1
    @Option(help: "scan: tokens in the synthetic store (default 65536 with --quick, else 204800).")
    var tokens: Int?

    mutating func validate() throws {
        guard name == "all" || BenchmarkSuites.all.contains(where: { $0.name == name }) else {
            throw ValidationError("unknown benchmark '\(name)'; choose one of: \(BenchmarkSuites.all.map(\.name).joined(separator: ", ")), all")
        }
        guard (1...100).contains(rounds) else {
            throw ValidationError("--rounds=\(rounds): expected a whole number of rounds from 1 to 100")
        }
        if let tokens, tokens < 1 { throw ValidationError("--tokens=\(tokens): expected a positive number of tokens") }
        _ = try dictionarySizes()
        _ = try l0Targets()
    }

    /// The percentages of --l0, each a whole number from 1 to 99.
    func l0Targets() throws -> [Int]? {
        try Self.wholeNumbers(l0, option: "--l0", in: 1...99, expected: "whole percentages from 1 to 99", example: "15,20")
    }

    /// The sizes of --dsae, each a whole number from 1 to 1,048,576.
    func dictionarySizes() throws -> [Int]? {
        try Self.wholeNumbers(dsae, option: "--dsae", in: 1...(1 << 20), expected: "dictionary sizes from 1 to 1048576",
                              example: "6144,24576")
    }

    /// A comma-separated list of whole numbers in `range`; any other part (empty, not a number, out of range) refuses
    /// the whole value by name.
    static func wholeNumbers(_ value: String?, option: String, in range: ClosedRange<Int>, expected: String,
                             example: String) throws -> [Int]? {
        guard let value else { return nil }
        let parts = value.split(separator: ",", omittingEmptySubsequences: false)
        let numbers = parts.compactMap { Int($0) }.filter { range.contains($0) }
        guard numbers.count == parts.count else {
            throw ValidationError("\(option)=\(value): expected \(expected), comma-separated (e.g. \(option)=\(example))")
        }
        return numbers
    }

    func run() throws {
        let options = BenchOptions(quick: quick, json: json, caseFilter: caseFilter, onlyPath: path?.rawValue,
                                   dictionarySizes: try dictionarySizes(), l0Percents: try l0Targets(), rounds: rounds,
                                   tokens: tokens)
        for suite in BenchmarkSuites.all where name == "all" || suite.name == name {
            do { try suite.run(options) } catch {
                FileHandle.standardError.write("benchmark \(suite.name) failed: \(error)\n".data(using: .utf8)!)
                throw ExitCode.failure
            }
        }
    }
}

BenchmarksCommand.main()
