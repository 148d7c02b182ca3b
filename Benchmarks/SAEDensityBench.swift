import Foundation
import SAE
import Tensor

/// The SAE step at every sparsity (issue 19): relu and nsae, 768→6144 and 768→24576 (6144 only with --quick),
/// batch 4096, L0 ≈ 1%, 5%, 10%, 25%, 50% of features (b_enc set to the Gaussian quantile of the target: x ~ N(0, I)
/// and unit encoder rows give pre ~ N(0, 1), N(0, 2) with nsae's noise σ = 1). Each case times the automatic step
/// (the path DenseStep chooses) (one warm-up step records the path chosen) and, A/B interleaved, both forced paths, best of N (the automatic figure is the chosen path's); the dense numpy peer
/// (and the PyTorch peer without --quick) run in the same invocation, as subprocesses after the cases of each
/// size, and each case reports its ratio to them. Run alone with `swift run -c release Benchmarks sae-density`.
func runSAEDensityBench(_ options: BenchOptions) throws {
    BLAS.setThreads(2)
    let dIn = 768, batch = 4096
    var rng = RNG(seed: 11)
    let x = rng.normalMatrix(batch, dIn)
    let sizes = options.quick ? [6144] : [6144, 24576]
    // Φ⁻¹(1 − p) for the target fractions p.
    let targets: [(fraction: Double, quantile: Float)] = [(0.01, 2.3263), (0.05, 1.6449), (0.10, 1.2816),
                                                          (0.25, 0.6745), (0.50, 0)]
    for dSAE in sizes {
        var rows: [(String, [String: Any], Double)] = []
        for arch in ["relu", "nsae"] {
            for target in targets {
                let sae = try SAERegistry.make(arch, dIn: dIn, dSAE: dSAE, alpha: arch == "relu" ? 1e-3 : 1e-6, seed: 5)
                let spread: Float = arch == "relu" ? 1 : Float(2).squareRoot()
                try sae.setParameters(b_enc: [Float](repeating: -target.quantile * spread, count: dSAE))
                let group = try SAEGroup(saes: [sae])
                let source = DensityBatch(x)
                let trainer = GroupTrainer(optimizer: AdamConfig(lr: 1e-5), batchSize: batch, logEvery: 1)
                let reps = options.quick || dSAE > 10_000 ? 2 : 3
                var best: [StepPath: Double] = [:]
                var l0 = 0.0
                var autoTookDense = false
                // Warm-up on the automatic path, which also records the path DenseStep chooses for this batch.
                let denseBefore = sae.denseSteps
                try trainer.train(group, source: source, steps: 1, context: .silent)
                autoTookDense = sae.denseSteps > denseBefore
                for _ in 0..<reps {
                    for path in [StepPath.sparse, .dense] {
                        sae.stepPath = path
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        let log = try trainer.train(group, source: source, steps: 1, context: .silent)
                        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                        best[path] = min(best[path] ?? .infinity, seconds)
                        l0 = log.rows.last!.l0
                    }
                }
                let auto = best[autoTookDense ? .dense : .sparse]!
                let name = "\(arch) \(dIn)x\(dSAE) b\(batch) L0 \(Int(target.fraction * 100))%"
                let row = (name, ["l0": l0.rounded(), "l0_fraction": (l0 / Double(dSAE) * 1000).rounded() / 1000,
                                    "step_ms": (auto * 1e4).rounded() / 10,
                                    "sparse_ms": (best[.sparse]! * 1e4).rounded() / 10,
                                    "dense_ms": (best[.dense]! * 1e4).rounded() / 10,
                                    "path": autoTookDense ? "dense" : "sparse"],
                             Double(batch) / auto)
                BenchResult(bench: "sae", caseName: row.0, metric: "activations_per_s", value: row.2, extra: row.1).emit(options)
                rows.append(row)
            }
        }
        let numpy = runPeer("sae_numpy.py", dSAE: dSAE, quick: options.quick)
        let torch = options.quick ? nil : runPeer("sae_torch.py", dSAE: dSAE, quick: false)
        for (name, _, rate) in rows {
            var extra: [String: Any] = [:]
            if let numpy { extra["vs_numpy"] = (rate / numpy * 100).rounded() / 100; extra["numpy_act_s"] = numpy.rounded() }
            if let torch { extra["vs_torch"] = (rate / torch * 100).rounded() / 100; extra["torch_act_s"] = torch.rounded() }
            guard !extra.isEmpty else { continue }
            BenchResult(bench: "sae", caseName: name + " vs peers", metric: "ratio", value: extra["vs_numpy"] as? Double ?? 0,
                        extra: extra).emit(options)
        }
    }
}

/// A peer of ../shared/peers (dense step, same shape) as a subprocess: its "train step" activations/s, or nil
/// (with a line saying why) when python3 or its packages are missing.
private func runPeer(_ script: String, dSAE: Int, quick: Bool) -> Double? {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../shared/peers/\(script)").standardizedFileURL.path
    guard FileManager.default.fileExists(atPath: path) else {
        writeLine("# peer \(script) skipped: \(path) not found")
        return nil
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", path, "--threads", "2", "--reps", quick ? "2" : "3", "--dsae", String(dSAE)]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch {
        writeLine("# peer \(script) skipped: \(error)")
        return nil
    }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    for line in output.split(separator: "\n") where line.hasPrefix("train step") {
        let fields = line.split(separator: " ")
        if let index = fields.firstIndex(where: { $0 == "activations/s" }), index > 0, let rate = Double(fields[index - 1]),
           rate.isFinite, rate > 0 {
            writeLine("# peer \(script) d_sae=\(dSAE): \(Int(rate)) activations/s (train step)")
            return rate
        }
    }
    writeLine("# peer \(script) gave no train-step figure (exit \(process.terminationStatus))")
    return nil
}

/// The same batch every step, without copying.
private final class DensityBatch: BatchSource {
    let x: Matrix
    init(_ x: Matrix) { self.x = x }
    var layerCount: Int { 1 }
    var dims: [Int] { [x.cols] }
    func nextBatch(rows: Int) throws -> [Matrix] { [x] }
}
