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

    /// The eight-lane noise (ActivationRows.noisyPositive of SIMD8, GaussianNoise.inverseNormalCDF of SIMD8) gives
    /// the scalar entry's value bit for bit: central region, both tails, bucket edges, NaN and σ = 0; and the row
    /// functions (list-writing and dense, over rows whose width is not a multiple of 8) the values of the scalar
    /// loop that draws two uniforms per 64-bit draw.
    func testEightLaneNoiseEqualsTheScalarEntryBitForBit() {
        let shift = UInt32(32 - GaussianNoise.bucketBits)
        var draws = NoiseStream(seed: 77)
        GaussianNoise.upperEdge.withUnsafeBufferPointer { edgeBuffer in
            let edge = edgeBuffer.baseAddress!
            let special: [UInt32] = [0, 1, UInt32.max, UInt32.max - 1, 1 << 31, 104_152_000, 4_190_815_000, 1 << 20, (1 << 20) - 1]
            var tailLanes = 0, evaluatedLanes = 0
            for sigma: Float in [1, 0.3, 0] {
                for trial in 0..<200_000 {
                    var v = SIMD8<Float>(), u = SIMD8<UInt32>()
                    for lane in 0..<8 {
                        let bits = draws.next()
                        u[lane] = trial % 50 == 0 ? special[(trial / 50 + lane) % special.count] : UInt32(truncatingIfNeeded: bits)
                        v[lane] = Float(Int64(bits >> 40) - (1 << 23)) / Float(1 << 21)   // about −4…4
                    }
                    if trial % 997 == 0 { v[trial % 8] = .nan }
                    if trial % 991 == 0 { v[(trial + 3) % 8] = .infinity }
                    let out = ActivationRows.noisyPositive(v, u, sigma, edge, shift: shift)
                    for lane in 0..<8 {
                        let scalar = ActivationRows.noisyPositive(v[lane], u[lane], sigma, edge, shift: shift)
                        if out[lane].bitPattern != scalar.bitPattern {
                            XCTFail("σ \(sigma), v \(v[lane]), u \(u[lane]): eight-lane \(out[lane]), scalar \(scalar)")
                            return
                        }
                        if scalar > 0 {
                            evaluatedLanes += 1
                            let p = (Double(u[lane]) + 0.5) / 4_294_967_296
                            if p < 0.02425 || p > 1 - 0.02425 { tailLanes += 1 }
                        }
                    }
                }
            }
            XCTAssertGreaterThan(tailLanes, 10_000, "the tails were exercised")
            XCTAssertGreaterThan(evaluatedLanes, 1_000_000)
            // Rows: the row functions against the scalar loop, widths around multiples of 8.
            for m in [1, 7, 8, 37, 64, 6150] {
                var rng = RNG(seed: UInt64(m))
                let pre = (0..<m).map { _ in rng.normal() }, benc = (0..<m).map { _ in rng.normal() * 0.5 }
                var expected = [Float](repeating: 0, count: m)
                var reference = NoiseStream(seed: 5)
                var j = 0
                while j < m {
                    let bits = reference.next()
                    for half in 0..<2 where j < m {
                        let u = UInt32(truncatingIfNeeded: half == 0 ? bits : bits >> 32)
                        expected[j] = ActivationRows.noisyPositive(pre[j] + benc[j], u, 1, edge, shift: shift)
                        j += 1
                    }
                }
                var dense = pre, listed = pre
                var feature = [Int32](repeating: -1, count: m), value = [Float](repeating: 0, count: m)
                var denseStream = NoiseStream(seed: 5), listStream = NoiseStream(seed: 5)
                let found = benc.withUnsafeBufferPointer { b in
                    dense.withUnsafeMutableBufferPointer {
                        ActivationRows.positiveWithNoiseDense($0.baseAddress!, b.baseAddress!, m, 1, edge, &denseStream)
                    }
                    return listed.withUnsafeMutableBufferPointer { l in
                        feature.withUnsafeMutableBufferPointer { f in value.withUnsafeMutableBufferPointer { v in
                            ActivationRows.positiveWithNoise(l.baseAddress!, b.baseAddress!, m, 1, edge, &listStream,
                                                             f.baseAddress!, v.baseAddress!, dense: true)
                        } }
                    }
                }
                XCTAssertEqual(dense.map(\.bitPattern), expected.map(\.bitPattern), "dense row, m = \(m)")
                XCTAssertEqual(listed.map(\.bitPattern), expected.map(\.bitPattern), "listed row written dense, m = \(m)")
                let positive = expected.indices.filter { expected[$0] > 0 }
                XCTAssertEqual(Array(feature.prefix(found)), positive.map { Int32($0) }, "listed features, m = \(m)")
                XCTAssertEqual(Array(value.prefix(found)), positive.map { expected[$0] }, "listed values, m = \(m)")
                var afterDense = reference, afterList = reference
                XCTAssertEqual(denseStream.next(), afterDense.next(), "the dense row used the scalar loop's draws, m = \(m)")
                XCTAssertEqual(listStream.next(), afterList.next(), "the listed row used the scalar loop's draws, m = \(m)")
            }
        }
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
