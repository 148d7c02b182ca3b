import Foundation
import SAE
import Synchronization
import Tensor

/// The SAE step at every sparsity (issue 19): relu and nsae, 768→6144 and 768→24576 (6144 only with --quick),
/// batch 4096, L0 ≈ 1%, 5%, 10%, 25%, 50% of features (b_enc set to the Gaussian quantile of the target: x ~ N(0, I)
/// and unit encoder rows give pre ~ N(0, 1), N(0, 2) with nsae's noise σ = 1). Each case is one `train` call whose
/// steps force the path (automatic first, as warm-up, which records the path DenseStep chooses; then the sparse
/// steps, then the dense ones), each step timed on its own; a path's figure is its best step, the automatic figure
/// the chosen path's. The dense numpy peer (and the PyTorch peer without --quick) run in the same invocation, after the
/// cases of each size, through Benchmarks/peer_run.py; with nsae cases also the NSAE's own step in numpy
/// (Benchmarks/sae_numpy_nsae.py: the same five matmuls plus the NSAE's noise and tanh, which the ReLU peer does not
/// do). The table gives each case's ratio to them and the load average. Run alone with
/// `swift run -c release Benchmarks sae-density`; `--dsae=24576` for one size only; `--l0=10,15,20` for other L0
/// targets (to find the sparse/dense crossover); `--rounds=3` for firmer ratios.
func runSAEDensityBench(_ options: BenchOptions) throws {
    BLAS.setThreads(2)
    let dIn = 768, batch = 4096
    var rng = RNG(seed: 11)
    let x = rng.normalMatrix(batch, dIn)
    // `--dsae=N[,N…]` picks the dictionary sizes (e.g. `--quick --dsae=24576`).
    let sizes = options.dictionarySizes ?? (options.quick ? [6144] : [6144, 24576])
    // The target fractions p (`--l0=PCT[,PCT…]`, default the issue's five) with Φ⁻¹(1 − p).
    let targets = (options.l0Percents ?? [1, 5, 10, 25, 50]).map { percent in
        (percent: percent, fraction: Double(percent) / 100, quantile: Float(upperQuantile(Double(percent) / 100)))
    }
    // `--rounds=N` runs the cases and the peers N times over, in turn, and ends with a table of each side's best
    // over the rounds: this VM's slow stretches last minutes, longer than a round's cases or its peers, so one
    // round's ratio can compare a quiet side with a slowed one (three rounds on 2026-12-03: nsae 50% 0.68–1.05×).
    let rounds = options.rounds
    for dSAE in sizes {
        var best: DensityTable?
        for round in 1...rounds {
            guard var table = try densityRound(options, x: x, dIn: dIn, dSAE: dSAE, batch: batch, targets: targets) else { break }
            if rounds > 1 { table.title = "round \(round) of \(rounds)" }
            table.print(options, batch: batch, emitRatios: rounds == 1)
            best = best.map { $0.merged(with: table) } ?? table
        }
        if rounds > 1, var best {
            best.title = "best of \(rounds) rounds (each case's and each peer's fastest step over the rounds)"
            best.print(options, batch: batch, emitRatios: true)
        }
    }
}

/// z with P(N(0, 1) > z) = p, by bisection on erfc (to 1e-12: the benchmark's b_enc, not a hot path).
func upperQuantile(_ p: Double) -> Double {
    var low = -40.0, high = 40.0
    while high - low > 1e-12 {
        let mid = (low + high) / 2
        if 0.5 * erfc(mid / 2.0.squareRoot()) > p { low = mid } else { high = mid }
    }
    return (low + high) / 2
}

/// One round at one size: every selected case, then (unless one path is forced) the peers; nil when no case is
/// selected.
private func densityRound(_ options: BenchOptions, x: Matrix, dIn: Int, dSAE: Int, batch: Int,
                          targets: [(percent: Int, fraction: Double, quantile: Float)]) throws -> DensityTable? {
    var table = DensityTable(size: "\(dIn)x\(dSAE) b\(batch)", loadBefore: LoadAverage.read())
    for arch in ["relu", "nsae"] where options.selects(arch) {
        for target in targets where options.selects("\(arch) \(target.percent)%") {
            let sae = try SAERegistry.make(arch, dIn: dIn, dSAE: dSAE, alpha: arch == "relu" ? 1e-3 : 1e-6, seed: 5)
            let spread: Float = arch == "relu" ? 1 : Float(2).squareRoot()
            try sae.setParameters(b_enc: [Float](repeating: -target.quantile * spread, count: dSAE))
            let reps = options.quick || dSAE > 10_000 ? 2 : 3
            let timedPaths: [StepPath] = switch options.onlyPath { case "sparse": [.sparse]; case "dense": [.dense]; default: [.sparse, .dense] }
            // Each path's steps back to back, as a training run takes them (a dense step right after a sparse
            // one ran up to ~15% slower, nsae 50%: 1302 ms alternating, 1142 in a run of dense steps).
            let schedule = [StepPath.automatic] + timedPaths.flatMap { Array(repeating: $0, count: reps) }
            let timed = try timeSteps(sae, x: x, schedule: schedule)
            var best: [StepPath: Double] = [:]
            for (path, seconds) in zip(schedule, timed.seconds).dropFirst() { best[path] = min(best[path] ?? .infinity, seconds) }
            let auto = best[timed.warmUpTookDense ? .dense : .sparse] ?? best.values.min()!
            let row = DensityRow(arch: arch, percent: target.percent, l0: timed.l0, dSAE: dSAE,
                                 sparseMs: (best[.sparse] ?? .nan) * 1e3, denseMs: (best[.dense] ?? .nan) * 1e3,
                                 path: timed.warmUpTookDense ? "dense" : "sparse", stepMs: auto * 1e3)
            BenchResult(bench: "sae", caseName: "\(arch) \(dIn)x\(dSAE) b\(batch) L0 \(row.percent)%",
                        metric: "activations_per_s", value: Double(batch) / auto,
                        extra: ["l0": timed.l0.rounded(), "l0_fraction": (timed.l0 / Double(dSAE) * 1000).rounded() / 1000,
                                "step_ms": (row.stepMs * 10).rounded() / 10, "sparse_ms": (row.sparseMs * 10).rounded() / 10,
                                "dense_ms": (row.denseMs * 10).rounded() / 10, "path": row.path,
                                "load_average": LoadAverage.read()]).emit(options)
            table.rows.append(row)
        }
    }
    guard !table.rows.isEmpty else { return nil }
    table.loadAfterCases = LoadAverage.read()
    guard options.onlyPath == nil else { return table }
    table.numpy = PeerStep.run("sae_numpy.py", dSAE: dSAE, batch: batch, quick: options.quick)
    if table.rows.contains(where: { $0.arch == "nsae" }) {
        table.numpyNSAE = PeerStep.run("sae_numpy_nsae.py", dSAE: dSAE, batch: batch, quick: options.quick, local: true)
    }
    table.torch = options.quick ? nil : PeerStep.run("sae_torch.py", dSAE: dSAE, batch: batch, quick: false)
    return table
}

/// Times each step of one `train` call on the same batch, with `schedule[i]` the path forced on step i (one call, so
/// the workspace's buffers are allocated once, as in a real run).
func timeSteps(_ sae: SAE, x: Matrix, schedule: [StepPath], beforeEachStep: (() -> Void)? = nil) throws
    -> (seconds: [Double], l0: Double, warmUpTookDense: Bool) {
    let group = try SAEGroup(saes: [sae])
    let source = ScheduledBatch(x, sae: sae, schedule: schedule, beforeEachStep: beforeEachStep)
    let clock = StepClock()
    let trainer = GroupTrainer(optimizer: AdamConfig(lr: 1e-5), batchSize: x.rows, logEvery: 1)
    let start = DispatchTime.now().uptimeNanoseconds
    let log = try trainer.train(group, source: source, steps: schedule.count, context: WorkContext(progress: clock))
    var previous = start
    var seconds: [Double] = []
    for t in clock.times { seconds.append(Double(t - previous) / 1e9); previous = t }
    return (seconds, log.rows.last!.l0, source.warmUpTookDense)
}

/// The same batch every step, without copying; before step i it sets the SAE's step path to schedule[i] and,
/// after the first step, notes whether that (automatic) step took the dense path.
private final class ScheduledBatch: BatchSource {
    let x: Matrix
    let sae: SAE
    let schedule: [StepPath]
    private var step = 0
    let beforeEachStep: (() -> Void)?
    private(set) var warmUpTookDense = false
    init(_ x: Matrix, sae: SAE, schedule: [StepPath], beforeEachStep: (() -> Void)?) {
        self.x = x; self.sae = sae; self.schedule = schedule; self.beforeEachStep = beforeEachStep
    }
    var layerCount: Int { 1 }
    var dims: [Int] { [x.cols] }
    func nextBatch(rows: Int) throws -> [Matrix] {
        if step == 1 { warmUpTookDense = sae.denseSteps > 0 }
        sae.stepPath = schedule[min(step, schedule.count - 1)]
        beforeEachStep?()
        step += 1
        return [x]
    }
}

/// Records the time of every progress report (one per training step).
final class StepClock: ProgressSink {
    private let stamps = Mutex<[UInt64]>([])
    func report(_ update: ProgressUpdate) { stamps.withLock { $0.append(DispatchTime.now().uptimeNanoseconds) } }
    var times: [UInt64] { stamps.withLock { $0 } }
}

/// The 1-, 5- and 15-minute load averages, as text: the machine is shared, so every figure carries its load.
enum LoadAverage {
    static func read() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }
}

struct DensityRow {
    var arch: String
    var percent: Int
    var l0: Double
    var dSAE: Int
    var sparseMs: Double
    var denseMs: Double
    var path: String
    var stepMs: Double
}

/// One size's cases beside the peers, printed as one table.
struct DensityTable {
    var size: String
    var loadBefore: String
    var loadAfterCases = ""
    var rows: [DensityRow] = []
    var numpy: PeerStep?
    var torch: PeerStep?
    /// The NSAE's own step in numpy (Benchmarks/sae_numpy_nsae.py), for the nsae rows.
    var numpyNSAE: PeerStep?
    /// Which round (or the best over the rounds) the table shows, with --rounds.
    var title: String?

    /// This table and a later round's of the same cases: each figure the faster of the two, each peer the run with
    /// the faster best step.
    func merged(with later: DensityTable) -> DensityTable {
        var result = self
        result.loadAfterCases = later.loadAfterCases
        for (i, row) in rows.enumerated() {
            guard let other = later.rows.first(where: { $0.arch == row.arch && $0.percent == row.percent }) else { continue }
            result.rows[i].sparseMs = row.sparseMs.isNaN ? other.sparseMs : min(row.sparseMs, other.sparseMs.isNaN ? .infinity : other.sparseMs)
            result.rows[i].denseMs = row.denseMs.isNaN ? other.denseMs : min(row.denseMs, other.denseMs.isNaN ? .infinity : other.denseMs)
            result.rows[i].stepMs = min(row.stepMs, other.stepMs)
            // The automatic path follows the measured density, the same each round; a difference is shown, not hidden.
            if other.path != row.path { result.rows[i].path = "\(row.path)/\(other.path)" }
        }
        func faster(_ a: PeerStep?, _ b: PeerStep?) -> PeerStep? {
            guard let a, let b else { return a ?? b }
            return b.bestRate > a.bestRate ? b : a
        }
        result.numpy = faster(numpy, later.numpy)
        result.torch = faster(torch, later.torch)
        result.numpyNSAE = faster(numpyNSAE, later.numpyNSAE)
        return result
    }

    /// `emitRatios`: with --json, one "vs peers" object per case (only for the final table when there are rounds).
    func print(_ options: BenchOptions, batch: Int, emitRatios: Bool = true) {
        for row in rows where emitRatios {
            var extra: [String: Any] = [:]
            let rate = Double(batch) / (row.stepMs / 1e3)
            if let numpy { extra["vs_numpy"] = (rate / numpy.bestRate * 100).rounded() / 100; extra["numpy_act_s"] = numpy.bestRate.rounded() }
            if let torch { extra["vs_torch"] = (rate / torch.bestRate * 100).rounded() / 100; extra["torch_act_s"] = torch.bestRate.rounded() }
            if row.arch == "nsae", let numpyNSAE {
                extra["vs_numpy_nsae"] = (rate / numpyNSAE.bestRate * 100).rounded() / 100; extra["numpy_nsae_act_s"] = numpyNSAE.bestRate.rounded()
            }
            guard options.json, !extra.isEmpty else { continue }
            BenchResult(bench: "sae", caseName: "\(row.arch) \(size) L0 \(row.percent)% vs peers", metric: "ratio",
                        value: extra["vs_numpy"] as? Double ?? 0, extra: extra).emit(options)
        }
        guard !options.json else { return }
        writeLine("")
        if let title { writeLine("\(title):") }
        writeLine("SAE step \(size), one step in ms (best of the timed steps; the peers' ratios are best step to best step); load average \(loadBefore) before, \(loadAfterCases) after the cases")
        var peers: [String] = [numpy.map { "numpy \($0.summary)" } ?? "numpy: none"]
        peers.append(torch.map { "torch \($0.summary)" } ?? (options.quick ? "torch: not run with --quick" : "torch: none"))
        if let numpyNSAE { peers.append("numpy NSAE step \(numpyNSAE.summary)") }
        writeLine((title == nil ? "peers (same run, after the cases): " : "peers (same run, after each round's cases): ") + peers.joined(separator: "; "))
        writeLine("arch  L0 target    L0  sparse ms  dense ms  path    step ms    act/s  ×numpy  ×torch  ×numpy NSAE step")
        for row in rows {
            let rate = Double(batch) / (row.stepMs / 1e3)
            let vsNumpy = numpy.map { String(format: "%6.2f", rate / $0.bestRate) } ?? "     -"
            let vsTorch = torch.map { String(format: "%6.2f", rate / $0.bestRate) } ?? "     -"
            let vsNSAE = row.arch == "nsae" ? numpyNSAE.map { String(format: "%6.2f", rate / $0.bestRate) } ?? "     -" : "     -"
            writeLine(String(format: "%-5@ %8d%% %5.0f %10.0f %9.0f  %-6@ %8.0f %8.0f  %@  %@  %@", row.arch as NSString, row.percent,
                             row.l0, row.sparseMs, row.denseMs, row.path as NSString, row.stepMs, rate, vsNumpy as NSString,
                             vsTorch as NSString, vsNSAE as NSString))
        }
        writeLine("")
    }
}

/// A dense peer's "train step" figure, from ../shared/peers through Benchmarks/peer_run.py (see there why).
struct PeerStep {
    /// Activations per second at the median step, as the peer prints it.
    var rate: Double
    var medianSeconds: Double
    /// The peer's fastest timed step (its "min"): the density table compares best step with best step, since this
    /// VM's neighbours now and then slow a whole stretch of steps by up to 50% and its own figures are the best of
    /// the timed steps too. `Benchmarks sae` and `sae-sweep` still divide by the median `rate`.
    var bestSeconds: Double = .nan
    /// Activations per second at the fastest step (the median's rate when the peer printed no min).
    var bestRate: Double { bestSeconds.isFinite && medianSeconds.isFinite && bestSeconds > 0 ? rate * medianSeconds / bestSeconds : rate }
    var foreignCPU: Double?
    var load: String

    var summary: String {
        String(format: "median %.0f act/s (%.0f ms", rate, medianSeconds * 1e3)
            + (bestSeconds.isFinite ? String(format: "; best step %.0f act/s, %.0f ms", bestRate, bestSeconds * 1e3) : "")
            + (foreignCPU.map { String(format: ", other processes %.2f cores", $0) } ?? "") + ", load \(load))"
    }

    /// Runs the peer for one d_sae; nil (with a line saying why) when it cannot run or prints no figure.
    /// `local`: the script is in this folder (Benchmarks/), not in ../shared/peers.
    static func run(_ script: String, dSAE: Int, batch: Int, quick: Bool, local: Bool = false) -> PeerStep? {
        let benchmarks = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let path = benchmarks.appendingPathComponent(local ? script : "../../shared/peers/\(script)").standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: path) else {
            writeLine("# peer \(script) skipped: \(path) not found")
            return nil
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", benchmarks.appendingPathComponent("peer_run.py").path, path, "--threads", "2",
                             "--reps", quick ? "2" : "3", "--dsae", String(dSAE), "--batch", String(batch)]
        let errorPath = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-peer-\(getpid())-\(script).err").path
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        do { try process.run() } catch {
            writeLine("# peer \(script) skipped: \(error)")
            return nil
        }
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if let step = parse(output) { return step }
        let errors = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        let tail = errors.split(separator: "\n").suffix(3).joined(separator: " | ")
        writeLine("# peer \(script) d_sae=\(dSAE) gave no train-step figure (exit \(process.terminationStatus)): \(tail)")
        return nil
    }

    /// The "train step … N activations/s … median Ts" line and peer_run's foreign-CPU line.
    static func parse(_ output: String) -> PeerStep? {
        var step: PeerStep?
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if line.hasPrefix("train step"), let i = fields.firstIndex(of: "activations/s"), i > 0,
               let rate = Double(fields[i - 1]), rate.isFinite, rate > 0 {
                func seconds(after label: Substring) -> Double? {
                    fields.firstIndex(of: label).flatMap { $0 + 1 < fields.count ? Double(fields[$0 + 1].dropLast()) : nil }
                }
                step = PeerStep(rate: rate, medianSeconds: seconds(after: "median") ?? .nan, bestSeconds: seconds(after: "min") ?? .nan,
                                foreignCPU: nil, load: LoadAverage.read())
            } else if line.hasPrefix("# peer_run: foreign_cpu="), let f = Double(line.dropFirst("# peer_run: foreign_cpu=".count)) {
                step?.foreignCPU = f
            }
        }
        return step
    }
}
