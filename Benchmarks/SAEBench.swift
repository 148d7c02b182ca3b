import Foundation
import SAE
import Tensor

/// SAE training throughput (design §6): d_in 768, expansions 8 and 16, batch 4096, relu and nsae, one layer and a
/// 12-layer group. b_enc starts negative so ~1% of features fire (the realistic L0 the sparse step is built for);
/// the L0 actually measured is reported. Peers on this machine kind: PyTorch 2108–2697 act/s, numpy 3825–3836
/// (768→6144, ../shared/peers/). "dense_equiv_gflops" counts the 5 dense GEMMs a plain step would do.
func runSAEBench(_ options: BenchOptions) throws {
    BLAS.setThreads(2)
    let dIn = 768, batch = 4096
    let sgemmPeak = try measureSgemm(batch: batch, dIn: dIn, dSAE: dIn * 8)
    BenchResult(bench: "sae", caseName: "sgemm \(batch)x\(dIn)x\(dIn * 8) (encoder forward)", metric: "gflops",
                value: sgemmPeak).emit(options)
    var rng = RNG(seed: 1)
    let x = rng.normalMatrix(batch, dIn)
    let layerCounts = options.quick ? [1, 3] : [1, 12]
    for layers in layerCounts {
        for expansion in [8, 16] {
            for arch in ["relu", "nsae"] {
                let dSAE = dIn * expansion
                let group = try SAEGroup.make(arch, dims: [Int](repeating: dIn, count: layers), expansion: expansion,
                                              alpha: arch == "relu" ? 1e-3 : 1e-6, sigma: 1)
                // pre ~ N(0, 1) for unit encoder rows and x ~ N(0, I); with noise σ = 1 it is N(0, 2).
                let bias: Float = arch == "relu" ? -2.33 : -2.33 * Float(2).squareRoot()
                for sae in group.saes { try sae.setParameters(b_enc: [Float](repeating: bias, count: dSAE)) }
                let source = RepeatedBatch(Array(repeating: x, count: layers))
                let steps = layers == 1 ? (options.quick ? 3 : 10) : (options.quick ? 1 : 3)
                let trainer = GroupTrainer(optimizer: AdamConfig(lr: 1e-4), batchSize: batch, logEvery: steps)
                try trainer.train(group, source: source, steps: 1, context: .silent)   // warm-up: buffers, optimizer state
                let t0 = DispatchTime.now().uptimeNanoseconds
                let log = try trainer.train(group, source: source, steps: steps, context: .silent)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                let activations = Double(batch * steps * layers)
                let l0 = log.rows.map(\.l0).reduce(0, +) / Double(log.rows.count)
                let denseFlops = 10.0 * Double(batch) * Double(dIn) * Double(dSAE) * Double(steps * layers)
                BenchResult(bench: "sae", caseName: "\(arch) \(dIn)x\(dSAE) b\(batch) \(layers == 1 ? "1 layer" : "\(layers)-layer group")",
                            metric: "activations_per_s", value: activations / seconds,
                            extra: ["l0": (l0 * 10).rounded() / 10, "l0_fraction": (l0 / Double(dSAE) * 1e4).rounded() / 1e4,
                                    "step_ms": (seconds / Double(steps) * 1e4).rounded() / 10,
                                    "dense_equiv_gflops": (denseFlops / seconds / 1e8).rounded() / 10,
                                    "fraction_of_sgemm_peak": (denseFlops / seconds / 1e9 / sgemmPeak * 1000).rounded() / 1000,
                                    "vs_torch_2697": (activations / seconds / 2697 * 100).rounded() / 100,
                                    "vs_numpy_3836": (activations / seconds / 3836 * 100).rounded() / 100]).emit(options)
            }
        }
    }
    try runSAEDensityBench(options)
    let topkPeers = try runTopKCases(options, x: x)
    let numpy = runNumpyPeer(options, dSAEs: topkPeers)
    for (dSAE, rate) in numpy.sorted(by: { $0.key < $1.key }) {
        BenchResult(bench: "sae", caseName: "peer numpy dense step 768x\(dSAE) b\(batch) (same run)", metric: "activations_per_s",
                    value: rate).emit(options)
    }
    try runSweepCase(options, numpyPeer: numpy[6144])
}

/// TopK and BatchTopK (design §6, issue 13): 768→6144 and 768→24576, batch 4096, k 32 and 64. Their codes are
/// exactly sparse (L0 = k), so the decoder and both weight gradients run over the k·B active entries only; the
/// encoder GEMM is the one dense product. AuxK is silent on a fresh SAE (no latent is dead yet); one case marks
/// half the latents dead to price it. Returns the d_sae sizes measured, for the numpy peer.
private func runTopKCases(_ options: BenchOptions, x: Matrix) throws -> [Int] {
    let dIn = 768, batch = x.rows
    let sizes = options.quick ? [6144] : [6144, 24576]
    for dSAE in sizes {
        for arch in ["topk", "batchtopk"] {
            for k in [32, 64] {
                try timeTopK(options, arch: arch, dIn: dIn, dSAE: dSAE, k: k, x: x, deadHalf: false)
            }
        }
        if dSAE == 6144 { try timeTopK(options, arch: "topk", dIn: dIn, dSAE: dSAE, k: 32, x: x, deadHalf: true) }
    }
    _ = batch
    return sizes
}

private func timeTopK(_ options: BenchOptions, arch: String, dIn: Int, dSAE: Int, k: Int, x: Matrix, deadHalf: Bool) throws {
    let batch = x.rows
    let sae = try SAERegistry.make(arch, dIn: dIn, dSAE: dSAE, alpha: 0, seed: 3, options: ["k": Double(k)])
    if deadHalf { sae.markDeadForBenchmark(fraction: 0.5) }
    let group = try SAEGroup(saes: [sae])
    let source = RepeatedBatch([x])
    let steps = options.quick ? 2 : (dSAE > 10_000 ? 3 : 6)
    let trainer = GroupTrainer(optimizer: AdamConfig(lr: 1e-4), batchSize: batch, logEvery: steps)
    try trainer.train(group, source: source, steps: 1, context: .silent)
    if deadHalf { sae.markDeadForBenchmark(fraction: 0.5) }
    let t0 = DispatchTime.now().uptimeNanoseconds
    let log = try trainer.train(group, source: source, steps: steps, context: .silent)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    let rate = Double(batch * steps) / seconds
    BenchResult(bench: "sae", caseName: "\(arch) k=\(k) \(dIn)x\(dSAE) b\(batch)\(deadHalf ? " AuxK on (half dead)" : "")",
                metric: "activations_per_s", value: rate,
                extra: ["l0": log.rows.last!.l0, "aux_term": ((log.rows.last!.loss - log.rows.last!.mseTerm) * 1e4).rounded() / 1e4,
                        "step_ms": (seconds / Double(steps) * 1e4).rounded() / 10]).emit(options)
}

/// The dense numpy peer (../shared/peers/sae_numpy.py) in the same run, when python3 with numpy is there:
/// its "train step" activations/s per d_sae.
func runNumpyPeer(_ options: BenchOptions, dSAEs: [Int]) -> [Int: Double] {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../shared/peers/sae_numpy.py").standardizedFileURL.path
    guard FileManager.default.fileExists(atPath: script) else {
        writeLine("# numpy peer skipped: \(script) not found")
        return [:]
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script, "--threads", "2", "--reps", options.quick ? "2" : "3",
                         "--dsae", dSAEs.map(String.init).joined(separator: ",")]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch {
        writeLine("# numpy peer skipped: \(error)")
        return [:]
    }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    var rates: [Int: Double] = [:]
    for line in output.split(separator: "\n") where line.hasPrefix("train step") {
        let fields = line.split(separator: " ")
        guard let sizeField = fields.first(where: { $0.hasPrefix("d_sae=") }),
              let index = fields.firstIndex(where: { $0 == "activations/s" }), index > 0,
              let rate = Double(fields[index - 1]) else { continue }
        let size = Int(sizeField.dropFirst("d_sae=".count)) ?? Int(fields[fields.firstIndex(of: sizeField)! + 1]) ?? 0
        rates[size] = rate
    }
    if rates.isEmpty { writeLine("# numpy peer gave no train-step figures (exit \(process.terminationStatus))") }
    return rates
}

/// The same batch every step, without copying (the benchmark measures the step, not a data pipeline).
private final class RepeatedBatch: BatchSource {
    let matrices: [Matrix]
    init(_ matrices: [Matrix]) { self.matrices = matrices }
    var layerCount: Int { matrices.count }
    var dims: [Int] { matrices.map(\.cols) }
    func nextBatch(rows: Int) throws -> [Matrix] { matrices }
}

/// GFLOP/s of the encoder's dense product at this shape, the ceiling for any step that runs it.
private func measureSgemm(batch: Int, dIn: Int, dSAE: Int) throws -> Double {
    var rng = RNG(seed: 2)
    let a = rng.normalMatrix(batch, dIn), b = rng.normalMatrix(dSAE, dIn)
    var c = Matrix(rows: batch, cols: dSAE)
    let seconds = medianSeconds(warmup: 1, repeats: 5) { BLAS.gemm(a, b, transB: true, into: &c) }
    return 2.0 * Double(batch * dIn) * Double(dSAE) / seconds / 1e9
}
