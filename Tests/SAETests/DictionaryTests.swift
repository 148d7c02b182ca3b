import XCTest
import Tensor
@testable import SAE

final class DictionaryTests: XCTestCase {
    private func sae(decoder rows: [[Float]]) throws -> SAE {
        let m = rows.count, n = rows[0].count
        return try SAE(config: SAEConfig(architecture: .nsae, dIn: n, dSAE: m, alpha: 1), W_enc: Matrix(rows: n, cols: m),
                       b_enc: [Float](repeating: 0, count: m), W_dec: Matrix(rows: m, cols: n, data: rows.flatMap { $0 }),
                       b_dec: [Float](repeating: 0, count: n))
    }

    func testNormsQuantilesAndPillars() throws {
        let s = try sae(decoder: [[3, 4], [0, 1], [0, 2], [-6, 0], [1, 0]])   // norms 5, 1, 2, 6, 1
        XCTAssertEqual(DictionaryAnalysis.decoderNorms(s), [5, 1, 2, 6, 1])
        let summary = DictionaryAnalysis.normSummary(s)
        XCTAssertEqual(summary.quantiles.first, 1); XCTAssertEqual(summary.quantiles.last, 6)
        XCTAssertEqual(summary.quantiles[4], 2, "median")
        XCTAssertEqual(summary.mean, 3)
        let pillars = try DictionaryAnalysis.pillars(s, top: 3)
        XCTAssertEqual(pillars.features, [3, 0, 2])
        // cos([-6,0],[3,4]) = -0.6, cos([-6,0],[0,2]) = 0, cos([3,4],[0,2]) = 0.8
        XCTAssertEqual(pillars.cosines.pairs, 3)
        XCTAssertEqual(pillars.cosines.mean, (-0.6 + 0 + 0.8) / 3, accuracy: 1e-6)
    }

    func testExactCosinesForSmallDictionariesAndUnbiasedSampling() throws {
        let s = try sae(decoder: [[1, 0], [0, 1], [1, 1], [-1, 0]])
        let exact = try DictionaryAnalysis.cosineSimilarity(s, pairs: 100)
        XCTAssertTrue(exact.exact)
        XCTAssertEqual(exact.pairs, 6)
        // Pairs: 0·1=0, 0·2=.7071, 0·3=-1, 1·2=.7071, 1·3=0, 2·3=-.7071
        XCTAssertEqual(exact.mean, (0 + 0.70710678 - 1 + 0.70710678 + 0 - 0.70710678) / 6, accuracy: 1e-6)
        XCTAssertEqual(exact.fractionAbove09, 1.0 / 6, accuracy: 1e-12)
        // Sampling never pairs a row with itself, and converges to the exact mean.
        let sampled = try DictionaryAnalysis.cosineSimilarity(s, pairs: 5, seed: 3)
        XCTAssertFalse(sampled.exact)
        let rows: [[Float]] = (0..<400).map { (i: Int) -> [Float] in
            let a = Float(i % 7) - 3, b = Float(i % 5) + 0.5, c = Float(i % 11) - 2
            return [a, b, c]
        }
        let many = try DictionaryAnalysis.cosineSimilarity(try sae(decoder: rows), pairs: 40_000, seed: 1)
        let all = try DictionaryAnalysis.cosineSimilarity(try sae(decoder: rows), pairs: 79_800)
        XCTAssertFalse(many.exact)
        XCTAssertTrue(all.exact)
        XCTAssertEqual(many.mean, all.mean, accuracy: 0.01)
        XCTAssertEqual(many.histogram.total, 40_000)
        let same = try DictionaryAnalysis.cosineSimilarity(try sae(decoder: [[1, 1], [2, 2], [3, 3]]), pairs: 2, seed: 1)
        XCTAssertEqual(same.mean, 1, accuracy: 1e-6, "distinct indices, identical directions")
    }

    func testL0VersusNormFitAcrossLayers() throws {
        func metrics(_ norm: Double, _ l0: Double) -> LayerMetrics {
            LayerMetrics(layer: 0, hookName: nil, tokens: 1, l0: l0, l1: 0, mse: 0, msePerDim: 0, explainedVariance: 0,
                         suppression: 1, meanInputNorm: norm, density: [], deadFraction: 0, aliveCount: 0, aliveFraction: 0,
                         log10DensityHistogram: Histogram(values: [], bins: 1, range: 0...1), noise: false)
        }
        let fit = try DictionaryAnalysis.l0VersusNorm([metrics(10, 5.0), metrics(20, 3.9), metrics(30, 3.2), metrics(40, 1.1)])
        XCTAssertEqual(fit.slope, -0.124, accuracy: 1e-12)
        XCTAssertEqual(fit.p, 0.025763990365201377, accuracy: 1e-10)   // scipy.stats.linregress
    }

    func testRecoveryIsOneForTheTrueDictionaryAndLowForRandom() throws {
        let data = try SyntheticData(d: 16, features: 20, active: 2, seed: 3)
        let perfect = try sae(decoder: (0..<20).map { data.dictionary.row($0).map { $0 * 2 } } + [[Float](repeating: 1, count: 16)])
        XCTAssertEqual(try data.recovery(perfect), 1, accuracy: 1e-6)
        let random = try SAERegistry.make("relu", dIn: 16, dSAE: 20, alpha: 1, seed: 99)
        XCTAssertLessThan(try data.recovery(random), 0.8)
        XCTAssertThrowsError(try data.recovery(try SAERegistry.make("relu", dIn: 8, dSAE: 20, alpha: 1))) {
            XCTAssertTrue("\($0)".contains("d = 16") && "\($0)".contains("d_in = 8"), "\($0)")
        }
        let batch = try SyntheticData(d: 16, features: 20, active: 3, norms: [1, 4], seed: 3).nextBatch(rows: 10)
        for r in 0..<10 { for c in 0..<16 { XCTAssertEqual(batch[1][r, c], 4 * batch[0][r, c], accuracy: 1e-5) } }
    }
}
