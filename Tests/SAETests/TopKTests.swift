import XCTest
import Tensor
@testable import SAE

/// Central finite differences of `loss` against the hand-written gradients, skipping entries whose perturbation
/// changes a discrete choice (`signature`: which features are selected), where the derivative does not exist.
func checkGradientsByFiniteDifferences(_ sae: SAE, _ x: Matrix, signature: () throws -> [Int32], label: String,
                                       tolerance: Double = 1e-2, h: Float = 1e-3, checkExtra: Bool = true,
                                       file: StaticString = #filePath, line: UInt = #line) throws {
    var r0 = RNG(seed: 0)
    let (_, grads) = try sae.lossAndGradients(x, noise: false, rng: &r0)
    let base = try signature()
    func lossValue() throws -> Double { var r = RNG(seed: 0); return try sae.loss(x, noise: false, rng: &r).loss }
    func fd(_ get: () -> Float, _ set: (Float) throws -> Void) throws -> Double? {
        let v = get()
        try set(v + h); let up = try lossValue(); let upSig = try signature()
        try set(v - h); let down = try lossValue(); let downSig = try signature()
        try set(v)
        guard upSig == base, downSig == base else { return nil }
        return (up - down) / Double(2 * h)
    }
    func compare(_ name: String, _ analytic: [Float], _ numeric: [Double?]) {
        var num2 = 0.0, err2 = 0.0, used = 0
        for (a, n) in zip(analytic, numeric) {
            guard let n else { continue }
            num2 += n * n; err2 += (Double(a) - n) * (Double(a) - n); used += 1
        }
        XCTAssertGreaterThan(used, analytic.count / 2, "\(label) \(name): too few entries away from kinks", file: file, line: line)
        XCTAssertGreaterThan(num2, 1e-8, "\(label) \(name): zero gradient, the check would be vacuous", file: file, line: line)
        XCTAssertLessThan((err2 / max(num2, 1e-30)).squareRoot(), tolerance,
                          "\(label) \(name): analytic \(analytic.prefix(5)) numeric \(numeric.prefix(5))", file: file, line: line)
    }
    var wEnc = sae.W_enc
    compare("W_enc", grads.W_enc.data, try (0..<wEnc.count).map { i in try fd({ wEnc.data[i] }, { wEnc.data[i] = $0; try sae.setParameters(W_enc: wEnc) }) })
    var wDec = sae.W_dec
    compare("W_dec", grads.W_dec.data, try (0..<wDec.count).map { i in try fd({ wDec.data[i] }, { wDec.data[i] = $0; try sae.setParameters(W_dec: wDec) }) })
    var bEnc = sae.b_enc
    compare("b_enc", grads.b_enc, try (0..<bEnc.count).map { i in try fd({ bEnc[i] }, { bEnc[i] = $0; try sae.setParameters(b_enc: bEnc) }) })
    var bDec = sae.b_dec
    compare("b_dec", grads.b_dec, try (0..<bDec.count).map { i in try fd({ bDec[i] }, { bDec[i] = $0; try sae.setParameters(b_dec: bDec) }) })
    for e in sae.extraParameters.indices where checkExtra {
        var extra = sae.extraParameters
        compare("extra[\(e)]", grads.extra[e], try (0..<extra[e].count).map { i in
            try fd({ extra[e][i] }, { extra[e][i] = $0; try sae.setParameters(extra: extra) })
        })
    }
}

/// The selected features of a training forward: main entries, then auxiliary ones.
func trainingSelection(_ sae: SAE, _ x: Matrix) -> [Int32] {
    let ws = StepWorkspace(dIn: sae.dIn, dSAE: sae.dSAE)
    ws.forward(sae, x: x, noiseSeed: nil, step: 0, denseCodes: false, needGradients: false, training: true)
    return ws.entryFeature.array(ws.nnz) + [-1] + ws.auxFeature.array(ws.auxPerRow * ws.rows)
}

final class TopKTests: XCTestCase {
    func makeTopK(k: Int, auxK: Int, dIn: Int = 6, dSAE: Int = 12, dead: [Int] = []) throws -> SAE {
        let sae = try SAERegistry.make("topk", dIn: dIn, dSAE: dSAE, alpha: 0, seed: 4,
                                       options: ["k": Double(k), "aux_k": Double(auxK), "aux_coefficient": 0.7, "dead_window": 100])
        var rng = RNG(seed: 9)
        try sae.setParameters(W_enc: rng.normalMatrix(dIn, dSAE, std: 0.7), b_enc: (0..<dSAE).map { _ in rng.normal() * 0.3 + 0.2 },
                              W_dec: rng.normalMatrix(dSAE, dIn, std: 0.5), b_dec: (0..<dIn).map { _ in rng.normal() * 0.2 })
        sae.tokensSinceFired = (0..<dSAE).map { dead.contains($0) ? 1000 : 0 }
        return sae
    }

    /// Without dead latents the loss is a plain function of the parameters: finite differences of `loss`.
    func testGradientsMatchFiniteDifferences() throws {
        let alive = try makeTopK(k: 3, auxK: 4)
        var rng = RNG(seed: 31)
        let x = rng.normalMatrix(5, 6, std: 1.5)
        var r = RNG(seed: 0)
        XCTAssertEqual(try alive.loss(x, noise: false, rng: &r).auxTerm, 0)
        try checkGradientsByFiniteDifferences(alive, x, signature: { trainingSelection(alive, x) }, label: "topk", h: 5e-4)
    }

    /// AuxK's gradient is SAELens's estimator: the residual e = x − x′ is detached. The reference is the same
    /// estimator in Double: finite differences of mse(θ) + coef·scale·(1/B)Σ‖ê(θ) − e₀‖² with e₀ frozen.
    func testAuxKGradientsMatchADoubleReferenceOfTheEstimator() throws {
        let dead = [1, 4, 5, 8, 10, 11]
        let sae = try makeTopK(k: 3, auxK: 4, dead: dead)
        var rng = RNG(seed: 31)
        let x = rng.normalMatrix(5, 6, std: 1.5)
        var r = RNG(seed: 0)
        let terms = try sae.loss(x, noise: false, rng: &r)
        XCTAssertGreaterThan(terms.auxTerm, 0.05 * terms.loss, "AuxK must matter for the check to see it")
        XCTAssertEqual(terms.l1Term, 0)
        XCTAssertEqual(terms.loss, terms.mseTerm + terms.auxTerm, accuracy: 1e-9 * terms.loss)
        let (_, grads) = try sae.lossAndGradients(x, noise: false, rng: &r)

        let n = 6, m = 12, B = x.rows, k = 3, kAux = 4
        let scale = min(Double(dead.count) / 4, 1)
        // θ = W_enc [n, m], b_enc [m], W_dec [m, n], b_dec [n], flat.
        let theta0 = (sae.W_enc.data + sae.b_enc + sae.W_dec.data + sae.b_dec).map(Double.init)
        func forward(_ t: [Double], frozen: [[Double]]?) -> (loss: Double, residual: [[Double]], selection: [Int]) {
            let bEnc = 0, wDec = n * m + m, bDec = wDec + m * n
            var loss = 0.0, residual: [[Double]] = [], selection: [Int] = []
            for b in 0..<B {
                let xc = (0..<n).map { Double(x[b, $0]) - t[bDec + $0] }
                let pre = (0..<m).map { j in (0..<n).reduce(t[n * m + bEnc + j]) { $0 + xc[$1] * t[$1 * m + j] } }
                let top = (0..<m).sorted { pre[$0] > pre[$1] }.prefix(k).filter { pre[$0] > 0 }
                let aux = dead.sorted { pre[$0] > pre[$1] }.prefix(kAux)
                selection += top.sorted() + [-1] + aux.sorted() + [-2]
                let recon = (0..<n).map { i in top.reduce(t[bDec + i]) { $0 + pre[$1] * t[wDec + $1 * n + i] } }
                let e = (0..<n).map { Double(x[b, $0]) - recon[$0] }
                residual.append(e)
                let e0 = frozen?[b] ?? e
                for i in 0..<n {
                    loss += e[i] * e[i] / Double(B)
                    let eHat = aux.reduce(0.0) { $0 + pre[$1] * t[wDec + $1 * n + i] }
                    loss += 0.7 * scale * (eHat - e0[i]) * (eHat - e0[i]) / Double(B)
                }
            }
            return (loss, residual, selection)
        }
        let base = forward(theta0, frozen: nil)
        XCTAssertEqual(base.loss, terms.loss, accuracy: 1e-5 * terms.loss, "the Double reference computes the same loss")
        let analytic = (grads.W_enc.data + grads.b_enc + grads.W_dec.data + grads.b_dec).map(Double.init)
        var num2 = 0.0, err2 = 0.0, used = 0
        for p in theta0.indices {
            let h = 1e-6
            var up = theta0, down = theta0
            up[p] += h; down[p] -= h
            let fu = forward(up, frozen: base.residual), fdn = forward(down, frozen: base.residual)
            guard fu.selection == base.selection, fdn.selection == base.selection else { continue }
            let numeric = (fu.loss - fdn.loss) / (2 * h)
            num2 += numeric * numeric; err2 += (numeric - analytic[p]) * (numeric - analytic[p]); used += 1
        }
        XCTAssertGreaterThan(used, theta0.count * 9 / 10)
        XCTAssertLessThan((err2 / num2).squareRoot(), 1e-4, "analytic vs the Double reference of the estimator")
        // The estimator is not the true gradient (the residual is detached): differentiating through e differs.
        var trueErr = 0.0
        for p in theta0.indices.prefix(n * m) {
            var up = theta0, down = theta0
            up[p] += 1e-6; down[p] -= 1e-6
            let numeric = (forward(up, frozen: nil).loss - forward(down, frozen: nil).loss) / 2e-6
            trueErr += (numeric - analytic[p]) * (numeric - analytic[p])
        }
        XCTAssertGreaterThan(trueErr.squareRoot(), 1e-2, "the check distinguishes the detached estimator from the full derivative")
    }

    /// The AuxK term against its formula written out in Double: top aux_k raw pre-activations among the dead,
    /// decoded without b_dec, against the residual, scaled by min(n_dead/aux_k, 1).
    func testAuxKTermMatchesItsFormula() throws {
        for (dead, auxK) in [([1, 4, 5, 8, 10, 11], 4), ([2, 7], 4)] {
            let sae = try makeTopK(k: 3, auxK: auxK, dead: dead)
            var rng = RNG(seed: 5)
            let x = rng.normalMatrix(7, 6, std: 2)
            var r = RNG(seed: 0)
            let terms = try sae.loss(x, noise: false, rng: &r)
            let codes = try sae.encode(x), recon = try sae.decode(codes)
            let wEnc = sae.W_enc, wDec = sae.W_dec
            let kAux = min(auxK, dead.count), scale = min(Double(dead.count) / Double(auxK), 1)
            var total = 0.0
            for b in 0..<x.rows {
                let pre = (0..<sae.dSAE).map { j in (0..<6).reduce(Double(sae.b_enc[j])) { $0 + Double(x[b, $1] - sae.b_dec[$1]) * Double(wEnc[$1, j]) } }
                let chosen = dead.sorted { pre[$0] > pre[$1] }.prefix(kAux)
                for i in 0..<6 {
                    let e = Double(x[b, i]) - Double(recon[b, i])
                    let eHat = chosen.reduce(0.0) { $0 + pre[$1] * Double(wDec[$1, i]) }
                    total += (eHat - e) * (eHat - e)
                }
            }
            let want = 0.7 * scale * total / Double(x.rows)
            XCTAssertEqual(terms.auxTerm, want, accuracy: 1e-5 * want, "dead \(dead)")
        }
    }

    func testL0IsExactlyKOnEveryToken() throws {
        for k in [1, 5, 16] {
            let sae = try makeTopK(k: k, auxK: 8, dIn: 16, dSAE: 64)
            try sae.setParameters(b_enc: [Float](repeating: 1, count: 64))
            var rng = RNG(seed: UInt64(k))
            let x = rng.normalMatrix(200, 16)
            let codes = try sae.encode(x)
            for b in 0..<x.rows {
                let row = codes.row(b)
                XCTAssertEqual(row.filter { $0 > 0 }.count, k, "row \(b)")
                // They are the k largest pre-activations.
                let pre = (0..<64).map { j in (0..<16).reduce(sae.b_enc[j]) { $0 + (x[b, $1] - sae.b_dec[$1]) * sae.W_enc[$1, j] } }
                let bar = pre.sorted(by: >)[k - 1]
                for j in 0..<64 where row[j] > 0 { XCTAssertGreaterThanOrEqual(pre[j], bar - 1e-5) }
            }
            XCTAssertEqual(try Evaluator.evaluate(sae, on: x).l0, Double(k))
            let top = try XCTUnwrap(sae.codesOnlyEncoder())
            XCTAssertEqual(try top(x), codes, "top/feature scan the same codes")
        }
    }

    func testTrainingKeepsL0AtKAndTheDecoderUnitNorm() throws {
        let data = try SyntheticData(d: 32, features: 64, active: 3, norms: [1], seed: 2)
        let group = try SAEGroup.make(template: SAEConfig(architecture: .topk, dIn: 1, dSAE: 1, alpha: .nan, seed: 5)
            .with(options: ["k": 4, "dead_window": 512]), dims: [32], expansion: 4)
        let log = try GroupTrainer(optimizer: AdamConfig(lr: 5e-3), batchSize: 128, logEvery: 50)
            .train(group, source: data, steps: 200, context: .silent)
        for row in log.rows {
            XCTAssertEqual(row.l0, 4, accuracy: 1e-9)
            // The log's loss is its terms: mse + AuxK (TopK has no L1 term).
            XCTAssertEqual(row.loss, row.mseTerm + row.auxTerm, accuracy: 1e-9 * row.loss)
        }
        XCTAssertGreaterThan(log.rows.map(\.auxTerm).max() ?? 0, 0, "features fell dead within 512 tokens, so AuxK entered the loss")
        XCTAssertEqual(TrainingLog.columns[5], "aux_term")
        for norm in DictionaryAnalysis.decoderNorms(group[0]) { XCTAssertEqual(norm, 1, accuracy: 1e-4) }
        XCTAssertLessThan(log.rows.last!.mseTerm, 0.5 * log.rows.first!.mseTerm, "training reduces the reconstruction error")
        XCTAssertGreaterThan(try data.recovery(group[0]), 0.8)
    }

    func testSAELensTopKFoldersLoadAsTopK() throws {
        for name in ["topk", "legacy_topk"] {
            let sae = try SAELens6Tests.checkAgainstSAELens(name, as: .topk)
            XCTAssertEqual(sae.config.options["k"], 8)
            let x = try SAELens6Tests.expected.matrix("\(name).x")
            XCTAssertEqual(try Evaluator.evaluate(sae, on: x).l0, 8, "L0 = k on every token")
        }
        XCTAssertEqual(try SAELensIO.load(SAELens6Tests.root + "/legacy_topk")[0].config.hookName, "blocks.6.hook_mlp_out")
        // And back: the folder nsae writes says topk with its k, and reads back identically.
        let folder = TestPaths.temporaryFolder("topk")
        let sae = try SAELensIO.load(SAELens6Tests.root + "/legacy_topk")[0]
        try SAELensIO.save(sae, to: folder + "/t")
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/t/cfg.json"))) as! [String: Any]
        XCTAssertEqual(cfg["architecture"] as? String, "topk")
        XCTAssertEqual(cfg["k"] as? Int, 8)
        let x = try SAELens6Tests.expected.matrix("legacy_topk.x")
        XCTAssertEqual(try SAELensIO.load(folder + "/t")[0].reconstruct(x), try sae.reconstruct(x))
    }

    func testBadOptionsAreRefusedByName() throws {
        XCTAssertThrowsMessage(try SAERegistry.make("topk", dIn: 4, dSAE: 8, alpha: 0, options: ["k": 9]), contains: ["k must be", "1...d_sae (8)", "9"])
        XCTAssertThrowsMessage(try SAERegistry.make("topk", dIn: 4, dSAE: 8, alpha: 0, options: ["k": 0]), contains: ["k must be"])
        XCTAssertThrowsMessage(try SAERegistry.make("topk", dIn: 4, dSAE: 8, alpha: 0, options: ["aux_coefficient": -1]), contains: ["aux_coefficient must be ≥ 0"])
        XCTAssertThrowsMessage(try SAERegistry.make("topk", dIn: 4, dSAE: 8, alpha: 0, options: ["dead_window": 0]), contains: ["dead_window"])
        var config = SAEConfig(architecture: .topk, dIn: 4, dSAE: 8, alpha: 0)
        XCTAssertThrowsMessage(try SAEArchitecture.topk.set("sigma", .number(1), in: &config), contains: ["topk has no option sigma", "k, aux_k"])
        XCTAssertThrowsMessage(try SAEArchitecture.topk.set("k", .number(2.5), in: &config), contains: ["k must be a whole number"])
    }
}

extension SAEConfig {
    func with(options: [String: Double]) -> SAEConfig { var c = self; c.options = options; return c }
}
