import XCTest
import Tensor
@testable import SAE

/// The pinned metrics of design §4 on SAEs whose outputs are known exactly.
final class MetricsTests: XCTestCase {
    /// W_enc = [I, −I], W_dec = [I; −I]: c = (x⁺, x⁻) and x′ = x⁺ − x⁻ = x exactly.
    private func identitySAE(d: Int) throws -> SAE {
        var wEnc = Matrix(rows: d, cols: 2 * d), wDec = Matrix(rows: 2 * d, cols: d)
        for i in 0..<d { wEnc[i, i] = 1; wEnc[i, d + i] = -1; wDec[i, i] = 1; wDec[d + i, i] = -1 }
        return try SAE(config: SAEConfig(architecture: .relu, dIn: d, dSAE: 2 * d, alpha: 1), W_enc: wEnc,
                       b_enc: [Float](repeating: 0, count: 2 * d), W_dec: wDec, b_dec: [Float](repeating: 0, count: d))
    }

    func testPerfectReconstructionAndHandBuiltSparsity() throws {
        let sae = try identitySAE(d: 3)
        // 4 tokens; feature j < 3 fires where x_j > 0, feature 3 + j where x_j < 0.
        let x = Matrix(rows: 4, cols: 3, data: [1, 0, -2,
                                                0, 0, 3,
                                                -1, 2, 0,
                                                4, 0, 0])
        let m = try Evaluator.evaluate(sae, on: x, batchSize: 3)   // two batches: streaming must not matter
        XCTAssertEqual(m.tokens, 4)
        XCTAssertEqual(m.explainedVariance, 1, accuracy: 1e-12)
        XCTAssertEqual(m.mse, 0, accuracy: 1e-12)
        XCTAssertEqual(m.suppression, 1, accuracy: 1e-6)
        XCTAssertEqual(m.l0, Double(2 + 1 + 2 + 1) / 4, accuracy: 1e-12)
        XCTAssertEqual(m.l1, Double(3 + 3 + 3 + 4) / 4, accuracy: 1e-6)
        XCTAssertEqual(m.density, [0.5, 0.25, 0.25, 0.25, 0, 0.25])
        XCTAssertEqual(m.aliveCount, 5)
        XCTAssertEqual(m.deadFraction, 1.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(m.log10DensityHistogram.counts.reduce(0, +), 5, "dead features are not in the log histogram")
        XCTAssertEqual(m.meanInputNorm, (5.0.squareRoot() + 3 + 5.0.squareRoot() + 4) / 4, accuracy: 1e-6)
    }

    func testMeanPredictorHasZeroExplainedVarianceAndHalfNormGivesHalfSuppression() throws {
        var rng = RNG(seed: 9)
        let x = rng.normalMatrix(50, 5, std: 2)
        var mean = [Float](repeating: 0, count: 5)
        for r in 0..<50 { for c in 0..<5 { mean[c] += x[r, c] / 50 } }
        // W_dec = 0: x′ = b_dec = the mean over the set.
        let sae = try SAE(config: SAEConfig(architecture: .relu, dIn: 5, dSAE: 4, alpha: 1),
                          W_enc: rng.normalMatrix(5, 4), b_enc: [0.1, 0.2, 0.3, 0.4], W_dec: Matrix(rows: 4, cols: 5), b_dec: mean)
        let m = try Evaluator.evaluate(sae, on: x, batchSize: 16)
        XCTAssertEqual(m.explainedVariance, 0, accuracy: 1e-5)
        var sq = 0.0
        for r in 0..<50 { for c in 0..<5 { sq += Double((x[r, c] - mean[c]) * (x[r, c] - mean[c])) } }
        XCTAssertEqual(m.mse, sq / 50, accuracy: 1e-4 * sq / 50)
        XCTAssertEqual(m.msePerDim, sq / 250, accuracy: 1e-4 * sq / 250)

        // x′ = x/2 exactly: suppression 0.5, EV = 1 − ¼Σ‖x‖²/Σ‖x − x̄‖².
        let half = try identitySAE(d: 5)
        var w = half.W_dec
        for i in 0..<w.count { w.data[i] *= 0.5 }
        try half.setParameters(W_dec: w)
        let h = try Evaluator.evaluate(half, on: x)
        XCTAssertEqual(h.suppression, 0.5, accuracy: 1e-6)
        var sumSq = 0.0
        for v in x.data { sumSq += Double(v * v) }
        XCTAssertEqual(h.explainedVariance, 1 - 0.25 * sumSq / sq, accuracy: 1e-5)
    }

    func testGroupEvaluationStreamsTheSameTokensToEveryLayer() throws {
        let data = try SyntheticData(d: 8, features: 16, active: 2, norms: [1, 10], seed: 4)
        let group = try SAEGroup.make("relu", dims: [8, 8], expansion: 2, alpha: 0.1)
        let metrics = try Evaluator.evaluate(group, source: data, tokens: 1000, batchSize: 300)
        XCTAssertEqual(metrics.map(\.tokens), [1000, 1000])
        XCTAssertEqual(metrics[1].meanInputNorm / metrics[0].meanInputNorm, 10, accuracy: 1e-4)
        XCTAssertThrowsError(try Evaluator.evaluate(group, source: try SyntheticData(d: 8, features: 16, active: 2, norms: [1]), tokens: 10)) {
            XCTAssertTrue("\($0)".contains("1 layers but the SAE group has 2"), "\($0)")
        }
    }

    func testNoiseIsOffInEvaluationUnlessTheConfigSaysAlways() throws {
        var rng = RNG(seed: 2)
        let x = rng.normalMatrix(64, 6)
        for mode in NoiseMode.allCases {
            let sae = try makeRandomSAE(.nsae)
            sae.config.noise = mode
            sae.config.sigma = 1
            let clean = try sae.encode(x, noise: false, rng: &rng)
            let evaluated = try sae.encode(x)
            XCTAssertEqual(evaluated == clean, mode == .train, "noise=\(mode)")
            XCTAssertEqual(try Evaluator.evaluate(sae, on: x).noise, mode == .always)
        }
    }
}
