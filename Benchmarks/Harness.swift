import Foundation
import Tensor

struct BenchOptions {
    var quick: Bool
    var json: Bool
    /// `--case=TEXT`: run only the cases whose name contains TEXT (benchmarks that support it say so).
    var caseFilter: String? = nil
    /// `--path=sparse|dense`: sae-density times only that step path (for profiling one path).
    var onlyPath: String? = nil
    /// `--dsae=N[,N…]`: sae-density's dictionary sizes (nil: its defaults).
    var dictionarySizes: [Int]? = nil
    /// `--l0=PCT[,PCT…]`: sae-density's L0 targets, percent of the features (nil: its defaults).
    var l0Percents: [Int]? = nil
    /// `--rounds=N`: sae-density's rounds.
    var rounds = 1
    /// `--tokens=N`: the scan benchmark's store size (nil: its default).
    var tokens: Int? = nil

    /// Whether a case named `name` (or a group of cases whose names start so) is selected by --case.
    func selects(_ name: String) -> Bool {
        guard let caseFilter else { return true }
        return name.contains(caseFilter) || caseFilter.hasPrefix(name)
    }
}

/// One measured case, printed as a table row or, with --json, as one JSON object per line.
struct BenchResult {
    var bench: String
    var caseName: String
    var metric: String          // activations_per_s, tokens_per_s, mb_per_s, gflops, ms
    var value: Double
    var extra: [String: Any] = [:]

    func emit(_ options: BenchOptions) {
        if options.json {
            var obj: [String: Any] = ["bench": bench, "case": caseName, "metric": metric, "value": value,
                                      "threads": BLAS.threads, "peak_rss_mb": peakRSSMegabytes()]
            for (k, v) in extra { obj[k] = v }
            let data = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
            writeLine(String(decoding: data, as: UTF8.self))
        } else {
            let extras = extra.keys.sorted().map { "\($0)=\(extra[$0]!)" }.joined(separator: " ")
            writeLine(String(format: "%-10@ %-44@ %12.2f %-18@ %@", bench as NSString, caseName as NSString, value,
                         metric as NSString, extras as NSString))
        }
    }
}

/// Peak resident set size of this process so far, in MiB.
func peakRSSMegabytes() -> Int { ProcessStats.peakRSSBytes() / (1 << 20) }

/// Unbuffered line to stdout, so results appear as they are measured even through a pipe.
func writeLine(_ s: String) { FileHandle.standardOutput.write((s + "\n").data(using: .utf8)!) }

/// Seconds per call of `body`, median over `repeats` timed runs after `warmup` untimed ones.
func medianSeconds(warmup: Int = 1, repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    for _ in 0..<warmup { try body() }
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    times.sort()
    return times[times.count / 2]
}
