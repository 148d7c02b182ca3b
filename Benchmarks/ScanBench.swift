import Activations
import Foundation
import SAE
import Tensor

/// The evaluation and top-k scans over a whole store (issue 19): `eval` (Evaluator over the store's shuffled reader,
/// as the `eval` command), `top` for one feature (TopActivations over the store, as `top` and `feature`), and the
/// same scan for every feature, each as tokens/s beside the numpy peer Benchmarks/scan_peer.py doing the same work on
/// the same store in the same invocation (after each size's cases), as ratios, with load averages.
/// The store is synthetic (x ~ N(0, I), d_in 768, written to a temp dir); the SAE is relu 768→6144 and 768→24576
/// (6144 only with --quick) with b_enc set to the Gaussian quantile of the target density, as SAEDensityBench
/// (unit encoder rows give pre ~ N(0, 1)): codes ~1%, ~10% and ~50% dense. Every case runs twice (the machine is
/// shared: both figures are printed, the ratio uses the better). `--tokens=N` sets the store size (default 204800,
/// 65536 with --quick); `--case=TEXT` selects cases by name ("eval", "top1", "topall", or "6144 10%" …); `--case=eval-`
/// adds the evaluation forced onto each decode ("eval-sparse", "eval-dense"), to price the decode-only crossover.
func runScanBench(_ options: BenchOptions) throws {
    BLAS.setThreads(2)
    let d = 768
    let tokens = options.tokens ?? (options.quick ? 65536 : 204_800)
    let sizes = options.quick ? [6144] : [6144, 24576]
    let densities: [(percent: Int, quantile: Float)] = [(1, 2.3263), (10, 1.2816), (50, 0)]
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-scan-bench-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    var rng = RNG(seed: 21)
    let writer = try ActivationStoreWriter(folder: root, model: "synthetic", hooks: [StoreHook(name: "blocks.6.hook_mlp_out", layer: 6, d: d)],
                                           dtype: .f32, contextLength: 128)
    for start in stride(from: 0, to: tokens, by: 1024) {
        let rows = min(1024, tokens - start)
        try writer.append([rng.normalMatrix(rows, d)], tokenIds: (start..<(start + rows)).map { Int32(1 + $0 % 50000) })
    }
    try writer.finish()
    let store = try ActivationStore(path: root)
    writeLine("# scan benchmark: store of \(tokens) tokens × d \(d) f32 (\((tokens * d * 4) >> 20) MB) at \(root)")

    for m in sizes {
        var rows: [ScanRow] = []
        let loadBefore = LoadAverage.read()
        for density in densities {
            let label = "\(m) \(density.percent)%"
            let sae = try SAERegistry.make("relu", dIn: d, dSAE: m, alpha: 1e-3, seed: 5)
            try sae.setParameters(b_enc: [Float](repeating: -density.quantile, count: m))
            let group = try SAEGroup(saes: [sae])
            var scanOptions = TopActivations.Options()
            scanOptions.k = 20
            let cases: [(name: String, body: () throws -> Double)] = [
                ("eval", {
                    let reader = try ShuffledBatchReader(store: store, hooks: [0], seed: 0)
                    return try Evaluator.evaluate(group, source: reader, tokens: reader.rowsPerEpoch)[0].l0
                }),
                // Only with --case=eval-: the evaluation forced onto either decode.
                ("eval-sparse", {
                    let reader = try ShuffledBatchReader(store: store, hooks: [0], seed: 0)
                    sae.stepPath = .sparse
                    defer { sae.stepPath = .automatic }
                    return try Evaluator.evaluate(group, source: reader, tokens: reader.rowsPerEpoch)[0].l0
                }),
                ("eval-dense", {
                    let reader = try ShuffledBatchReader(store: store, hooks: [0], seed: 0)
                    sae.stepPath = .dense
                    defer { sae.stepPath = .automatic }
                    return try Evaluator.evaluate(group, source: reader, tokens: reader.rowsPerEpoch)[0].l0
                }),
                ("top1", {
                    let s = try TopActivations.scan(store: store, hook: 0, sae: sae, features: [0], options: scanOptions)
                    return s[0].density * Double(m)
                }),
                ("topall", {
                    let s = try TopActivations.scan(store: store, hook: 0, sae: sae, options: scanOptions)
                    return s.reduce(0) { $0 + $1.density }
                }),
            ]
            for (name, body) in cases where name.hasPrefix("eval-") ? options.caseFilter?.contains("eval-") == true
                : options.selects("\(label) \(name)") || options.selects(name) {
                var seconds: [Double] = [], l0 = 0.0
                for _ in 0..<2 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    l0 = try body()
                    seconds.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                let row = ScanRow(dSAE: m, percent: density.percent, bias: -density.quantile, scan: name, l0: l0,
                                  seconds: seconds, load: LoadAverage.read())
                BenchResult(bench: "scan", caseName: "relu 768x\(m) L0 \(density.percent)% \(name) \(tokens) tokens",
                            metric: "tokens_per_s", value: Double(tokens) / seconds.min()!,
                            extra: ["l0": l0.rounded(), "seconds": seconds.map { ($0 * 1000).rounded() / 1000 },
                                    "load_average": row.load]).emit(options)
                rows.append(row)
            }
        }
        guard !rows.isEmpty else { continue }
        let loadAfterCases = LoadAverage.read()
        for density in densities {
            let wanted = rows.filter { $0.percent == density.percent }
            guard !wanted.isEmpty else { continue }
            let peer = ScanPeer.run(store: root, dSAE: m, bias: -density.quantile,
                                    cases: Array(Set(wanted.map { $0.scan.hasPrefix("eval") ? "eval" : $0.scan })).sorted())
            for i in rows.indices where rows[i].percent == density.percent {
                rows[i].peer = peer[rows[i].scan.hasPrefix("eval") ? "eval" : rows[i].scan]
            }
        }
        writeLine("")
        writeLine("scans relu 768x\(m) over \(tokens) tokens (chunks: eval 4096 rows, top 1024); load average \(loadBefore) before, "
                  + "\(loadAfterCases) after the cases, \(LoadAverage.read()) after the peer")
        writeLine("L0 target  scan           L0   nsae s (2 runs)       tok/s   numpy s (2 runs)      tok/s   ×numpy  peer foreign cpu")
        for row in rows {
            let rate = Double(tokens) / row.seconds.min()!
            let peerRate = row.peer.map { Double($0.tokens) / $0.seconds.min()! }
            writeLine(String(format: "%8d%%  %-11@ %6.0f  %8.2f %8.2f  %10.0f   %@  %@   %@", row.percent, row.scan as NSString, row.l0,
                             row.seconds[0], row.seconds[1], rate,
                             (row.peer.map { String(format: "%8.2f %8.2f  %10.0f", $0.seconds[0], $0.seconds.count > 1 ? $0.seconds[1] : .nan, peerRate!) }
                                ?? "          (no peer)          ") as NSString,
                             (peerRate.map { String(format: "%6.2f", rate / $0) } ?? "     -") as NSString,
                             (row.peer.map { String(format: "%.2f (peer L0 %.0f)", $0.foreignCPU, $0.l0) } ?? "") as NSString))
            if options.json, let peerRate {
                BenchResult(bench: "scan", caseName: "relu 768x\(m) L0 \(row.percent)% \(row.scan) vs numpy", metric: "ratio",
                            value: (rate / peerRate * 100).rounded() / 100,
                            extra: ["numpy_tokens_per_s": peerRate.rounded(), "peer_l0": row.peer!.l0.rounded()]).emit(options)
            }
        }
        writeLine("")
    }
}

struct ScanRow {
    var dSAE: Int
    var percent: Int
    var bias: Float
    var scan: String
    var l0: Double
    var seconds: [Double]
    var load: String
    var peer: ScanPeer?
}

/// One case of Benchmarks/scan_peer.py: its runs' seconds, tokens, L0 and the other processes' CPU share.
struct ScanPeer {
    var tokens: Int
    var seconds: [Double]
    var l0: Double
    var foreignCPU: Double

    /// Runs the peer on the store for the given cases; an empty answer (with a line saying why) when it cannot run.
    static func run(store: String, dSAE: Int, bias: Float, cases: [String]) -> [String: ScanPeer] {
        let benchmarks = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", benchmarks.appendingPathComponent("scan_peer.py").path, "--store", store,
                             "--dsae", String(dSAE), "--bias", String(bias), "--cases", cases.joined(separator: ","),
                             "--reps", "2", "--threads", "2"]
        let out = Pipe(), errors = Pipe()
        process.standardOutput = out
        process.standardError = errors
        do { try process.run() } catch {
            writeLine("# scan peer skipped: \(error)")
            return [:]
        }
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var result: [String: ScanPeer] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("scan-peer ") {
            let fields = line.split(separator: " ")
            var values: [String: String] = [:]
            for f in fields.dropFirst(2) {
                let kv = f.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { values[String(kv[0])] = String(kv[1]) }
            }
            guard let tokens = values["tokens"].flatMap(Int.init), let seconds = values["seconds"].flatMap(Double.init) else { continue }
            let name = String(fields[1])
            var entry = result[name] ?? ScanPeer(tokens: tokens, seconds: [], l0: 0, foreignCPU: 0)
            entry.seconds.append(seconds)
            entry.l0 = values["l0"].flatMap(Double.init) ?? .nan
            entry.foreignCPU = max(entry.foreignCPU, values["foreign_cpu"].flatMap(Double.init) ?? .nan)
            result[name] = entry
        }
        if result.isEmpty || process.terminationStatus != 0 {
            let tail = errorText.split(separator: "\n").suffix(3).joined(separator: " | ")
            writeLine("# scan peer d_sae=\(dSAE) exit \(process.terminationStatus): \(tail)")
        }
        return result
    }
}
