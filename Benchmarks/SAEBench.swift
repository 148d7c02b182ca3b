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
