import XCTest
import Tensor
@testable import SAE

/// The trainer's fused sparse Adam against a plain Adam written here over the dense gradients of
/// `lossAndGradients`, with every AdamConfig value away from its default: if the trainer ignored any of them
/// (the study's code silently dropped lr and betas) the parameters would differ.
final class OptimizerTests: XCTestCase {
    private struct Params { var wEnc: [Double], bEnc: [Double], wDec: [Double], bDec: [Double] }

    private func referenceAdam(_ sae: SAE, x: Matrix, config: AdamConfig, steps: Int) throws -> SAE {
        let ref = sae.copy()
        var m = Params(wEnc: .init(repeating: 0, count: sae.dIn * sae.dSAE), bEnc: .init(repeating: 0, count: sae.dSAE),
                       wDec: .init(repeating: 0, count: sae.dIn * sae.dSAE), bDec: .init(repeating: 0, count: sae.dIn))
        var v = m
        for t in 1...steps {
            var rng = RNG(seed: 0)
            var (_, g) = try ref.lossAndGradients(x, noise: false, rng: &rng)
            if ref.config.architecture.decoderConstraint == .unitNorm { ref.projectDecoderGradient(&g.W_dec) }
            var flat = [g.W_enc.data, g.b_enc, g.W_dec.data, g.b_dec].map { $0.map(Double.init) }
            let norm = flat.joined().reduce(0) { $0 + $1 * $1 }.squareRoot()
            if let clip = config.clipNorm, norm > Double(clip) { flat = flat.map { $0.map { $0 * Double(clip) / norm } } }
            let lr = Double(config.lr) * (t < config.warmupSteps ? Double(t) / Double(config.warmupSteps) : 1)
            let b1 = Double(config.beta1), b2 = Double(config.beta2), eps = Double(config.eps)
            func update(_ p: [Float], _ g: [Double], _ m: inout [Double], _ v: inout [Double]) -> [Float] {
                var out = p
                for i in p.indices {
                    m[i] = b1 * m[i] + (1 - b1) * g[i]
                    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                    let mh = m[i] / (1 - Foundation.pow(b1, Double(t))), vh = v[i] / (1 - Foundation.pow(b2, Double(t)))
                    out[i] = Float(Double(p[i]) - lr * mh / (vh.squareRoot() + eps))
                }
                return out
            }
            let wEnc = update(ref.W_enc.data, flat[0], &m.wEnc, &v.wEnc)
            let bEnc = update(ref.b_enc, flat[1], &m.bEnc, &v.bEnc)
            let wDec = update(ref.W_dec.data, flat[2], &m.wDec, &v.wDec)
            let bDec = update(ref.b_dec, flat[3], &m.bDec, &v.bDec)
            try ref.setParameters(W_enc: Matrix(rows: sae.dIn, cols: sae.dSAE, data: wEnc), b_enc: bEnc,
                                  W_dec: Matrix(rows: sae.dSAE, cols: sae.dIn, data: wDec), b_dec: bDec)
            if ref.config.architecture.decoderConstraint == .unitNorm { ref.normalizeDecoderRows() }
        }
        return ref
    }

    private func trained(_ sae: SAE, x: Matrix, config: AdamConfig, steps: Int) throws -> SAE {
        let s = sae.copy()
        let group = try SAEGroup(saes: [s])
        let source = try InMemoryBatchSource(layers: [x], shuffle: false)
        try GroupTrainer(optimizer: config, batchSize: x.rows, logEvery: 1).train(group, source: source, steps: steps, context: .silent)
        return s
    }

    private func maxDifference(_ a: SAE, _ b: SAE) -> Float {
        zip([a.W_enc.data, a.b_enc, a.W_dec.data, a.b_dec].joined(), [b.W_enc.data, b.b_enc, b.W_dec.data, b.b_dec].joined())
            .map { abs($0 - $1) }.max()!
    }

    func testEveryAdamSettingReachesTheOptimizer() throws {
        var rng = RNG(seed: 3)
        let x = rng.normalMatrix(12, 6, std: 1.5)
        let base = AdamConfig(lr: 0.02, beta1: 0.7, beta2: 0.95, eps: 1e-3, warmupSteps: 3, clipNorm: 0.5)
        let variants: [(String, AdamConfig)] = [
            ("lr", { var c = base; c.lr = 0.03; return c }()),
            ("beta1", { var c = base; c.beta1 = 0.5; return c }()),
            ("beta2", { var c = base; c.beta2 = 0.8; return c }()),
            ("eps", { var c = base; c.eps = 1e-1; return c }()),
            ("warmupSteps", { var c = base; c.warmupSteps = 0; return c }()),
            ("clipNorm", { var c = base; c.clipNorm = nil; return c }()),
        ]
        for arch in SAEArchitecture.allCases {
            let sae = try makeRandomSAE(arch)
            sae.config.sigma = 0   // deterministic gradients, so the trainer and the reference see the same loss
            let steps = 4
            let ours = try trained(sae, x: x, config: base, steps: steps)
            let reference = try referenceAdam(sae, x: x, config: base, steps: steps)
            XCTAssertLessThan(maxDifference(ours, reference), 2e-5, "\(arch): trainer vs reference Adam")
            XCTAssertGreaterThan(maxDifference(ours, sae), 1e-3, "\(arch): training moved the parameters")
            for (name, config) in variants {
                let changed = try trained(sae, x: x, config: config, steps: steps)
                XCTAssertLessThan(maxDifference(changed, try referenceAdam(sae, x: x, config: config, steps: steps)), 2e-5, "\(arch) \(name)")
                XCTAssertGreaterThan(maxDifference(changed, ours), 1e-5, "\(arch): changing \(name) must change the result")
            }
        }
    }

    func testBadSettingsAreRejectedByName() {
        for (config, word) in [(AdamConfig(lr: 0), "lr"), (AdamConfig(beta1: 1), "beta1"), (AdamConfig(beta2: -0.1), "beta2"),
                               (AdamConfig(eps: 0), "eps"), (AdamConfig(warmupSteps: -1), "warmupSteps"),
                               (AdamConfig(clipNorm: 0), "clipNorm")] {
            XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains(word), "\($0)") }
        }
    }
}

extension OptimizerTests {
    /// The update's eight-lane loop gives the numbers of the scalar formula, element for element (both the lanes
    /// and the tail: 37 values), at a clipping scale and a warm-up step.
    func testAdamUpdateLanesMatchTheScalarFormulaExactly() {
        var rng = RNG(seed: 3)
        let n = 37
        let config = AdamConfig(lr: 3e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, warmupSteps: 4)
        let adam = AdamStepScalars(config, step: 2, gradScale: 0.7)
        var p = (0..<n).map { _ in rng.normal() }, m = (0..<n).map { _ in 0.1 * rng.normal() }
        var v = (0..<n).map { _ in abs(0.01 * rng.normal()) }
        let g = (0..<n).map { _ in rng.normal() }
        var (ep, em, ev) = (p, m, v)
        for i in 0..<n {
            let gi = g[i] * adam.gradScale
            em[i] = adam.beta1 * em[i] + (1 - adam.beta1) * gi
            ev[i] = adam.beta2 * ev[i] + (1 - adam.beta2) * gi * gi
            ep[i] -= adam.stepSize * em[i] / (ev[i].squareRoot() * adam.invSqrtBias2 + adam.eps)
        }
        adam.apply(&p, &m, &v, g, n)
        XCTAssertEqual(p, ep); XCTAssertEqual(m, em); XCTAssertEqual(v, ev)
    }
}
