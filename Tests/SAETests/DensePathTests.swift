import XCTest
import Tensor
@testable import SAE

/// The dense step (DenseStep.swift) against the sparse step: same loss, gradients and Adam step up to float32
/// summation order, at densities from ~1% to ~90% of features, on random and synthetic batches; and a training
/// run whose density crosses DenseStep.crossoverDensity against runs forced onto either path.
final class DensePathTests: XCTestCase {
    private let dIn = 32, dSAE = 256, rows = 192

    /// ‖a − b‖ / ‖b‖ in double precision.
    private func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var diff = 0.0, norm = 0.0
        for i in a.indices { diff += Double(a[i] - b[i]) * Double(a[i] - b[i]); norm += Double(b[i]) * Double(b[i]) }
        return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
    }

    private func parameters(_ s: SAE) -> [(String, [Float])] {
        [("W_enc", s.W_enc.data), ("b_enc", s.b_enc), ("W_dec", s.W_dec.data), ("b_dec", s.b_dec)]
    }

    /// An SAE whose pre-activations on x ~ N(0, I) are ~N(0, 1) (N(0, 2) with nsae's noise), b_enc = −q·spread so
    /// that a fraction ≈ 1 − Φ(q) of the features fires.
    private func makeSAE(_ arch: String, quantile q: Float) throws -> SAE {
        let sae = try SAERegistry.make(arch, dIn: dIn, dSAE: dSAE, alpha: arch == "relu" ? 1e-2 : 1e-5, seed: 9)
        let spread: Float = arch == "relu" ? 1 : Float(2).squareRoot()
        var rng = RNG(seed: 31)
        try sae.setParameters(b_enc: (0..<dSAE).map { _ in -q * spread + 0.1 * rng.normal() })
        return sae
    }

    private func batches() throws -> [(String, Matrix)] {
        var rng = RNG(seed: 4)
        let synthetic = try SyntheticData(d: dIn, features: 64, active: 4, norms: [Float(dIn).squareRoot() / 2], seed: 8)
        return [("random", rng.normalMatrix(rows, dIn)), ("synthetic", try synthetic.nextBatch(rows: rows)[0])]
    }

    func testDenseAndSparsePathsGiveTheSameGradientsAndAdamStep() throws {
        var densities: [Double] = []
        for arch in ["relu", "nsae"] {
            for (batchName, x) in try batches() {
                for q: Float in [2.3, 1.6, 1.0, 0.0, -1.3] {
                    let base = try makeSAE(arch, quantile: q)
                    let sparse = base.copy(), dense = base.copy()
                    sparse.stepPath = .sparse; dense.stepPath = .dense
                    var r1 = RNG(seed: 77), r2 = RNG(seed: 77)
                    let (ts, gs) = try sparse.lossAndGradients(x, noise: true, rng: &r1)
                    let (td, gd) = try dense.lossAndGradients(x, noise: true, rng: &r2)
                    let density = ts.l0 / Double(dSAE)
                    densities.append(density)
                    let label = "\(arch) \(batchName) density \(String(format: "%.3f", density))"
                    XCTAssertEqual(td.l0, ts.l0, label)
                    XCTAssertEqual(td.loss, ts.loss, accuracy: 1e-5 * abs(ts.loss), label)
                    XCTAssertEqual(td.mseTerm, ts.mseTerm, accuracy: 1e-5 * abs(ts.mseTerm), label)
                    XCTAssertEqual(td.l1Term, ts.l1Term, accuracy: 1e-9 + 1e-5 * abs(ts.l1Term), label)
                    for (name, a, b) in [("W_enc", gd.W_enc.data, gs.W_enc.data), ("W_dec", gd.W_dec.data, gs.W_dec.data),
                                         ("b_enc", gd.b_enc, gs.b_enc), ("b_dec", gd.b_dec, gs.b_dec)] {
                        XCTAssertLessThanOrEqual(relativeDifference(a, b), 1e-5, "\(label): d\(name)")
                    }
                    XCTAssertGreaterThan(gs.W_dec.data.reduce(0) { $0 + abs($1) }, 0, label)
                    // One Adam step on each path (a large lr, so a wrong gradient moves parameters by ~1e-2). Its
                    // first step is lr·g/(|g| + ε), whose sensitivity to g is lr·ε/(|g| + ε)²: with the default
                    // ε = 1e-8 an entry that cancels to ~ε steps by a different fraction of lr on each path (relu
                    // synthetic at 6% density, Zen 3's OpenBLAS: one W_enc gradient 5.3e-8 sparse, 4.3e-8 dense,
                    // steps 2.9e-4 apart). ε = 1e-3 bounds that by lr/ε·|Δg| (~1e-7 here) and still steps every
                    // entry above 1e-2 by ≥ 0.9·lr.
                    for s in [sparse, dense] {
                        try GroupTrainer(optimizer: AdamConfig(lr: 1e-2, eps: 1e-3), batchSize: rows, logEvery: 1)
                            .train(try SAEGroup(saes: [s]), source: FixedBatch(x), steps: 1, context: .silent)
                    }
                    XCTAssertEqual(sparse.denseSteps, 0, label)
                    XCTAssertEqual(dense.denseSteps, 1, label)
                    for ((name, a), (_, b)) in zip(parameters(dense), parameters(sparse)) {
                        XCTAssertLessThanOrEqual(relativeDifference(a, b), 1e-5, "\(label): \(name) after one Adam step")
                    }
                    XCTAssertGreaterThan(relativeDifference(sparse.W_dec.data, base.W_dec.data), 1e-4,
                                         "\(label): the Adam step moved the decoder")
                }
            }
        }
        XCTAssertLessThan(densities.min()!, 0.03, "the cases cover sparse codes")
        XCTAssertGreaterThan(densities.max()!, 0.8, "the cases cover dense codes")
    }

    /// Density falls from ~60% to below the crossover during the run (a large L1 coefficient), so the automatic
    /// run takes both paths; it ends with the weights of runs forced onto either path within the stated tolerance.
    func testTrainingAcrossTheCrossoverMatchesEitherForcedPath() throws {
        let synthetic = try SyntheticData(d: dIn, features: 64, active: 4, norms: [Float(dIn).squareRoot() / 2], seed: 8)
        let data = try synthetic.nextBatch(rows: rows * 40)[0]
        let base = try SAERegistry.make("relu", dIn: dIn, dSAE: dSAE, alpha: 3, seed: 9)
        try base.setParameters(b_enc: [Float](repeating: 0.3, count: dSAE))
        var runs: [StepPath: (SAE, TrainingLog)] = [:]
        for path in [StepPath.automatic, .sparse, .dense] {
            let sae = base.copy()
            sae.stepPath = path
            let log = try GroupTrainer(optimizer: AdamConfig(lr: 2e-2), batchSize: rows, logEvery: 1)
                .train(try SAEGroup(saes: [sae]), source: CyclingBatches(data, rows: rows), steps: 40, context: .silent)
            runs[path] = (sae, log)
        }
        let (auto, log) = runs[.automatic]!
        let first = log.rows.first!.l0 / Double(dSAE), last = log.rows.last!.l0 / Double(dSAE)
        XCTAssertGreaterThan(first, DenseStep.crossoverDensity, "starts dense")
        XCTAssertLessThan(last, DenseStep.crossoverDensity, "ends sparse")
        XCTAssertGreaterThan(auto.denseSteps, 0)
        XCTAssertLessThan(auto.denseSteps, 40)
        XCTAssertEqual(runs[.dense]!.0.denseSteps, 40)
        XCTAssertEqual(runs[.sparse]!.0.denseSteps, 0)
        // Tolerance: 40 Adam steps of float32 summation-order differences (~1e-7 relative per step, which Adam
        // can amplify where it divides small gradients by √v). Measured: automatic vs sparse ≤ 8.0e-7 (b_enc),
        // automatic vs dense ≤ 5.0e-8, with the density going 0.62 → 0.05 (step 16) → 0.00.
        let tolerance = 1e-5
        for forced in [StepPath.sparse, .dense] {
            for ((name, a), (_, b)) in zip(parameters(auto), parameters(runs[forced]!.0)) {
                XCTAssertLessThanOrEqual(relativeDifference(a, b), tolerance, "\(name): automatic vs \(forced)")
            }
        }
        XCTAssertGreaterThan(relativeDifference(auto.W_dec.data, base.W_dec.data), 1e-2, "training moved the decoder")
    }
}

extension DensePathTests {
    /// Progress shows the step's L0 (the first layer's), so a user sees why a step is slow.
    func testProgressShowsTheCurrentL0() throws {
        final class Messages: ProgressSink, @unchecked Sendable {
            var lines: [String] = []
            func report(_ update: ProgressUpdate) { lines.append(update.message) }
        }
        var rng = RNG(seed: 4)
        let x = rng.normalMatrix(rows, dIn)
        let sae = try makeSAE("relu", quantile: 1.0)
        let messages = Messages()
        let log = try GroupTrainer(optimizer: AdamConfig(lr: 1e-3), batchSize: rows, logEvery: 1)
            .train(try SAEGroup(saes: [sae]), source: FixedBatch(x), steps: 2, context: WorkContext(progress: messages))
        XCTAssertEqual(messages.lines.count, 2)
        let l0 = log.rows.last!.l0
        XCTAssertTrue(messages.lines.last!.contains(String(format: "L0 %.1f (%.1f%% of features)", l0, 100 * l0 / Double(dSAE))),
                      messages.lines.last!)
    }
}

extension DensePathTests {
    /// Evaluation and the top-k scans' encode go through the same forward: the dense decode gives the codes and
    /// reconstruction of the sparse one.
    func testEncodeAndReconstructAgreeOnBothPaths() throws {
        var rng = RNG(seed: 5)
        let x = rng.normalMatrix(rows, dIn)
        for arch in ["relu", "nsae"] {
            for q: Float in [2.3, 0.0, -1.3] {
                let sparse = try makeSAE(arch, quantile: q), dense = sparse.copy()
                sparse.stepPath = .sparse; dense.stepPath = .dense
                var r1 = RNG(seed: 1), r2 = RNG(seed: 1)
                let cs = try sparse.encode(x, noise: false, rng: &r1), cd = try dense.encode(x, noise: false, rng: &r2)
                XCTAssertEqual(cd.data, cs.data, "\(arch) q \(q): codes")
                XCTAssertLessThanOrEqual(relativeDifference(try dense.reconstruct(x).data, try sparse.reconstruct(x).data), 1e-5,
                                         "\(arch) q \(q): reconstruction")
                let es = try Evaluator.evaluate(sparse, on: x), ed = try Evaluator.evaluate(dense, on: x)
                XCTAssertEqual(ed.mse, es.mse, accuracy: 1e-5 * es.mse, "\(arch) q \(q): eval mse")
            }
        }
    }
}

extension DensePathTests {
    /// `eval` counts the codes where the activation wrote them dense (no entry list) when its last batch was dense:
    /// batches alternating between ~35% and 0% dense make every guess of the automatic path wrong, and the metrics
    /// must equal those of the evaluation forced onto the listed (sparse) path: L0 and every feature's density
    /// exactly, L1 and the reconstruction terms to float32 summation order; NSAE with noise=always too.
    func testEvaluationCountsTheSameOnEveryCodeLayout() throws {
        var rng = RNG(seed: 17)
        var x = Matrix(rows: 4 * 64, cols: dIn)
        for b in 0..<x.rows { for i in 0..<dIn { x[b, i] = rng.normal() * ((b / 64) % 2 == 0 ? 4 : 0.01) } }
        for (arch, noise) in [("relu", false), ("nsae", false), ("nsae", true)] {
            let base = try makeSAE(arch, quantile: 1.3)
            if noise { base.config.noise = .always }
            var results: [StepPath: LayerMetrics] = [:]
            for path in [StepPath.sparse, .dense, .automatic] {
                let sae = base.copy()
                sae.stepPath = path
                results[path] = try Evaluator.evaluate(sae, on: x, batchSize: 64)
            }
            let listed = results[.sparse]!
            XCTAssertGreaterThan(listed.l0, 0.1 * Double(dSAE), "\(arch): the dense batches are dense")
            XCTAssertLessThan(listed.density.min()!, listed.density.max()!, "\(arch): densities vary")
            for path in [StepPath.dense, .automatic] {
                let m = results[path]!, label = "\(arch) noise \(noise) \(path)"
                XCTAssertEqual(m.l0, listed.l0, label)
                XCTAssertEqual(m.density, listed.density, label)
                XCTAssertEqual(m.aliveCount, listed.aliveCount, label)
                XCTAssertEqual(m.l1, listed.l1, accuracy: 1e-6 * listed.l1, label)
                XCTAssertEqual(m.mse, listed.mse, accuracy: 1e-5 * listed.mse, label)
                XCTAssertEqual(m.explainedVariance, listed.explainedVariance, accuracy: 1e-5, label)
                XCTAssertEqual(m.suppression, listed.suppression, accuracy: 1e-5, label)
            }
        }
    }
}

private final class FixedBatch: BatchSource {
    let x: Matrix
    init(_ x: Matrix) { self.x = x }
    var layerCount: Int { 1 }
    var dims: [Int] { [x.cols] }
    func nextBatch(rows: Int) throws -> [Matrix] { [x] }
}

/// Consecutive row blocks of one matrix, wrapping around.
private final class CyclingBatches: BatchSource {
    let data: Matrix
    let rows: Int
    var next = 0
    init(_ data: Matrix, rows: Int) { self.data = data; self.rows = rows }
    var layerCount: Int { 1 }
    var dims: [Int] { [data.cols] }
    func nextBatch(rows: Int) throws -> [Matrix] {
        let blocks = data.rows / rows
        let start = (next % blocks) * rows * data.cols
        next += 1
        return [Matrix(rows: rows, cols: data.cols, data: Array(data.data[start..<(start + rows * data.cols)]))]
    }
}

extension DensePathTests {
    /// The two ways a training forward's codes can be laid out (written dense when the workspace's last batch was
    /// dense, listed otherwise) give the same step whichever path the batch then takes: a dense batch after a
    /// sparse one (codes listed, then scattered and counted) and a sparse batch after a dense one (codes written
    /// dense, then listed) against a fresh workspace that guessed right; and on either path the same firing
    /// counts and noise-free firing as the sparse path's lists.
    func testCodeLayoutGuessDoesNotChangeTheStep() throws {
        var rng = RNG(seed: 12)
        let x = rng.normalMatrix(rows, dIn)
        for arch in ["relu", "nsae"] {
            let dense = try makeSAE(arch, quantile: -0.5), sparse = try makeSAE(arch, quantile: 2.0)
            struct Step { var terms: LossTerms; var grads: [[Float]]; var fires: [Int]; var firedWithoutNoise: [Bool]; var densePath: Bool }
            func step(_ ws: StepWorkspace, _ sae: SAE) -> Step {
                ws.forward(sae, x: x, noiseSeed: sae.drawsNoise(true) ? 99 : nil, step: 3, denseCodes: false, needGradients: true)
                ws.backward(sae)
                return Step(terms: ws.terms,
                            grads: [ws.gradDec.array(dSAE * dIn), ws.gradEnc.array(dSAE * dIn), ws.gradBEnc, ws.gradBDec],
                            fires: (0..<dSAE).map(ws.fires), firedWithoutNoise: (0..<dSAE).map(ws.firedWithoutNoise),
                            densePath: ws.denseGradients)
            }
            // Right guesses: a fresh workspace writes dense (the dense SAE), one that just stepped a sparse batch lists.
            let denseRight = step(StepWorkspace(dIn: dIn, dSAE: dSAE), dense)
            let listing = StepWorkspace(dIn: dIn, dSAE: dSAE)
            _ = step(listing, sparse)
            let sparseRight = step(listing, sparse)
            // Wrong guesses: the listing workspace meets the dense batch, then a dense-writing one the sparse batch.
            let denseWrong = step(listing, dense)
            let sparseWrong = step(listing, sparse)
            XCTAssertTrue(denseRight.densePath && denseWrong.densePath, arch)
            XCTAssertFalse(sparseRight.densePath || sparseWrong.densePath, arch)
            XCTAssertGreaterThan(denseRight.terms.l0, 0.3 * Double(dSAE), arch)
            XCTAssertLessThan(sparseRight.terms.l0, 0.1 * Double(dSAE), arch)
            for (right, wrong, label) in [(denseRight, denseWrong, "dense batch"), (sparseRight, sparseWrong, "sparse batch")] {
                XCTAssertEqual(wrong.grads, right.grads, "\(arch) \(label): gradients")
                XCTAssertEqual(wrong.fires, right.fires, "\(arch) \(label): fires")
                XCTAssertEqual(wrong.firedWithoutNoise, right.firedWithoutNoise, "\(arch) \(label)")
                XCTAssertEqual(wrong.terms.l0, right.terms.l0, "\(arch) \(label)")
                XCTAssertEqual(wrong.terms.mseTerm, right.terms.mseTerm, "\(arch) \(label)")
                XCTAssertEqual(wrong.terms.l1Term, right.terms.l1Term, accuracy: 1e-12 * right.terms.l1Term, "\(arch) \(label)")
            }
            // The dense path's counts against the sparse path's lists, both SAEs forced onto each path.
            for (sae, name) in [(dense, "dense"), (sparse, "sparse")] {
                let onDense = sae.copy(), onSparse = sae.copy()
                onDense.stepPath = .dense; onSparse.stepPath = .sparse
                let d = step(StepWorkspace(dIn: dIn, dSAE: dSAE), onDense), s = step(StepWorkspace(dIn: dIn, dSAE: dSAE), onSparse)
                XCTAssertTrue(d.densePath && !s.densePath)
                XCTAssertEqual(d.fires, s.fires, "\(arch) \(name) SAE: fires")
                XCTAssertEqual(d.firedWithoutNoise, s.firedWithoutNoise, "\(arch) \(name) SAE: fired without noise")
                XCTAssertEqual(d.terms.l0, s.terms.l0, "\(arch) \(name) SAE")
                XCTAssertTrue(s.fires.contains { $0 > 0 } && s.fires.contains { $0 < rows }, "\(arch) \(name) SAE: counts vary")
                if arch == "nsae" {
                    // The noise-free maximum against a direct evaluation of max_b W_enc[j]·(x_b − b_dec) + b_enc[j].
                    let ws = StepWorkspace(dIn: dIn, dSAE: dSAE)
                    ws.forward(onDense, x: x, noiseSeed: 99, step: 3, denseCodes: false, needGradients: true)
                    for j in 0..<dSAE {
                        var best = -Double.infinity
                        for b in 0..<rows {
                            var v = Double(sae.b_enc[j])
                            for i in 0..<dIn { v += Double(sae.encoderRows[j, i]) * Double(x[b, i] - sae.b_dec[i]) }
                            best = max(best, v)
                        }
                        XCTAssertEqual(Double(ws.noiseFreeMaximum.base[j]), best, accuracy: 1e-4 * (1 + abs(best)), "feature \(j)")
                    }
                }
                if arch == "nsae" && name == "sparse" {
                    XCTAssertNotEqual(s.firedWithoutNoise, s.fires.map { $0 > 0 }, "nsae: noise-free firing differs from noisy firing")
                }
            }
        }
    }
}
