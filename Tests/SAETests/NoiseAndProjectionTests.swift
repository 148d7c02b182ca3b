import XCTest
import Foundation
import Tensor
@testable import SAE

final class NoiseAndProjectionTests: XCTestCase {
    /// With W_enc = 0 and b_enc = p, c = tanh(ReLU(p + σz)): P(c > 0) = Φ(p/σ) and E[atanh c] = E[(p + σz)⁺]
    /// = pΦ(p/σ) + σφ(p/σ). This checks the shortcut sampler draws the full normal, tails included.
    func testNSAENoiseIsGaussian() throws {
        let sigma: Float = 1.5
        let biases: [Float] = [-3, -1, 0, 0.7]
        let m = biases.count * 25
        let config = SAEConfig(architecture: .nsae, dIn: 2, dSAE: m, alpha: 0, sigma: sigma, noise: .always)
        let sae = try SAE(config: config, W_enc: Matrix(rows: 2, cols: m), b_enc: (0..<m).map { biases[$0 % biases.count] },
                          W_dec: Matrix(rows: m, cols: 2), b_dec: [0, 0])
        var rng = RNG(seed: 4)
        let c = try sae.encode(Matrix(rows: 4000, cols: 2), noise: true, rng: &rng)
        for (k, p) in biases.enumerated() {
            var active = 0, sumPre = 0.0, count = 0
            for b in 0..<c.rows { for j in stride(from: k, to: m, by: biases.count) {
                count += 1
                let v = c[b, j]
                if v > 0 { active += 1; sumPre += Double(Foundation.atanh(Double(v))) }
            } }
            let s = Double(p / sigma)
            let phi = 0.5 * Foundation.erfc(-s / 2.0.squareRoot())
            let density = Foundation.exp(-s * s / 2) / (2 * Double.pi).squareRoot()
            XCTAssertEqual(Double(active) / Double(count), phi, accuracy: 0.006, "P(active) for bias \(p)")
            XCTAssertEqual(sumPre / Double(count), Double(p) * phi + Double(sigma) * density, accuracy: 0.02, "E[(p+σz)⁺] for bias \(p)")
        }
        // Same seed, same noise; a different seed, different noise.
        var r1 = RNG(seed: 9), r2 = RNG(seed: 9), r3 = RNG(seed: 10)
        let x = Matrix(rows: 40, cols: 2)
        XCTAssertEqual(try sae.encode(x, noise: true, rng: &r1), try sae.encode(x, noise: true, rng: &r2))
        XCTAssertNotEqual(try sae.encode(x, noise: true, rng: &r1), try sae.encode(x, noise: true, rng: &r3))
    }

    func testDecoderProjectionAndRenormalization() throws {
        let sae = try makeRandomSAE(.relu)
        var rng = RNG(seed: 1)
        var g = rng.normalMatrix(sae.dSAE, sae.dIn)
        let original = g
        sae.projectDecoderGradient(&g)
        for j in 0..<sae.dSAE {
            var dot: Float = 0, moved: Float = 0, along: Float = 0, ww: Float = 0
            for i in 0..<sae.dIn {
                dot += g[j, i] * sae.W_dec[j, i]
                ww += sae.W_dec[j, i] * sae.W_dec[j, i]
            }
            XCTAssertEqual(dot, 0, accuracy: 1e-5, "projected gradient of row \(j) is orthogonal to it")
            // What was removed is parallel to the row: g0 − g = λ·w.
            for i in 0..<sae.dIn { along += (original[j, i] - g[j, i]) * sae.W_dec[j, i]; moved += (original[j, i] - g[j, i]) * (original[j, i] - g[j, i]) }
            XCTAssertEqual(along * along, moved * ww, accuracy: 1e-3 * max(1, moved * ww))
        }
        sae.normalizeDecoderRows()
        let norms = DictionaryAnalysis.decoderNorms(sae)
        XCTAssertEqual(norms.count, sae.dSAE)
        for norm in norms { XCTAssertEqual(norm, 1, accuracy: 1e-6) }
    }

    /// relu training keeps decoder rows on the unit sphere; nsae leaves them free.
    func testTrainingKeepsReLUDecoderRowsUnitNorm() throws {
        let data = try SyntheticData(d: 16, features: 32, active: 3, norms: [5], seed: 2)
        for arch in ["relu", "nsae"] {
            let group = try SAEGroup.make(arch, dims: [16], expansion: 2, alpha: 0.1)
            try GroupTrainer(optimizer: AdamConfig(lr: 0.05), batchSize: 64, logEvery: 10).train(group, source: data, steps: 20, context: .silent)
            let norms = DictionaryAnalysis.decoderNorms(group[0])
            if arch == "relu" {
                for n in norms { XCTAssertEqual(n, 1, accuracy: 1e-5) }
            } else {
                XCTAssertGreaterThan(norms.map { abs($0 - 1) }.max()!, 0.05, "nsae decoder rows are unconstrained")
            }
        }
    }
}
