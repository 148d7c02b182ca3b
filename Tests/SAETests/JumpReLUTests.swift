import XCTest
import Tensor
@testable import SAE

final class JumpReLUTests: XCTestCase {
    func makeJumpReLU(bandwidth: Double = 0.4, lambda: Double = 0.3, dIn: Int = 6, dSAE: Int = 12) throws -> SAE {
        let sae = try SAERegistry.make("jumprelu", dIn: dIn, dSAE: dSAE, alpha: 0, seed: 4,
                                       options: ["l0_coefficient": lambda, "bandwidth": bandwidth, "threshold": 0.2])
        var rng = RNG(seed: 19)
        try sae.setParameters(W_enc: rng.normalMatrix(dIn, dSAE, std: 0.7), b_enc: (0..<dSAE).map { _ in rng.normal() * 0.3 + 0.2 },
                              W_dec: rng.normalMatrix(dSAE, dIn, std: 0.5), b_dec: (0..<dIn).map { _ in rng.normal() * 0.2 },
                              extra: [(0..<dSAE).map { _ in abs(rng.normal()) * 0.4 }])
        return sae
    }

    /// W_enc, b_enc, W_dec, b_dec get the exact gradient of the reconstruction (the L0 term is flat in them
    /// away from the jumps): finite differences of `loss`.
    func testWeightGradientsMatchFiniteDifferences() throws {
        let sae = try makeJumpReLU()
        var rng = RNG(seed: 3)
        let x = rng.normalMatrix(6, 6, std: 1.5)
        var r = RNG(seed: 0)
        let terms = try sae.loss(x, noise: false, rng: &r)
        XCTAssertEqual(terms.auxTerm, 0.3 * terms.l0, accuracy: 1e-9, "the L0 penalty is λ·L0")
        XCTAssertEqual(terms.loss, terms.mseTerm + terms.auxTerm, accuracy: 1e-9 * terms.loss)
        try checkGradientsByFiniteDifferences(sae, x, signature: { trainingSelection(sae, x) }, label: "jumprelu",
                                              h: 5e-4, checkExtra: false)
    }

    /// ∂L/∂θ is the straight-through estimate; the reference is that estimator written out in Double from the
    /// definitions (v, x′, ∂L/∂c = 2/B (x′ − x)·W_dec[j]).
    func testThresholdGradientMatchesADoubleReferenceOfTheEstimator() throws {
        for (bandwidth, lambda) in [(0.4, 0.3), (0.8, 0.0), (0.05, 2.0)] {
            let sae = try makeJumpReLU(bandwidth: bandwidth, lambda: lambda)
            var rng = RNG(seed: 8)
            let x = rng.normalMatrix(40, 6, std: 1.5)
            var r = RNG(seed: 0)
            let (_, grads) = try sae.lossAndGradients(x, noise: false, rng: &r)
            let n = 6, m = 12, B = x.rows
            let theta = sae.extraParameters[0].map(Double.init)
            var want = [Double](repeating: 0, count: m)
            var inBand = 0
            for b in 0..<B {
                let xc = (0..<n).map { Double(x[b, $0]) - Double(sae.b_dec[$0]) }
                let v = (0..<m).map { j in (0..<n).reduce(Double(sae.b_enc[j])) { $0 + xc[$1] * Double(sae.W_enc[$1, j]) } }
                let c = (0..<m).map { v[$0] > theta[$0] && v[$0] > 0 ? v[$0] : 0 }
                let recon = (0..<n).map { i in (0..<m).reduce(Double(sae.b_dec[i])) { $0 + c[$1] * Double(sae.W_dec[$1, i]) } }
                for j in 0..<m where abs(v[j] - theta[j]) < bandwidth / 2 {
                    inBand += 1
                    let dc = (0..<n).reduce(0.0) { $0 + 2 / Double(B) * (recon[$1] - Double(x[b, $1])) * Double(sae.W_dec[j, $1]) }
                    want[j] -= (theta[j] * dc + lambda / Double(B)) / bandwidth
                }
            }
            XCTAssertGreaterThan(inBand, 3, "entries inside the band")
            let err = zip(grads.extra[0], want).map { (Double($0) - $1) * (Double($0) - $1) }.reduce(0, +).squareRoot()
            let norm = want.map { $0 * $0 }.reduce(0, +).squareRoot()
            XCTAssertGreaterThan(norm, 1e-3)
            XCTAssertLessThan(err / norm, 1e-4, "ε \(bandwidth) λ \(lambda): \(grads.extra[0].prefix(4)) vs \(want.prefix(4))")
        }
    }

    func testTrainingLowersL0AndKeepsThresholdsNonNegative() throws {
        let data = try SyntheticData(d: 16, features: 32, active: 2, norms: [1], seed: 6)
        func train(_ lambda: Double) throws -> (SAE, TrainingLog) {
            let group = try SAEGroup.make(template: SAEConfig(architecture: .jumprelu, dIn: 1, dSAE: 1, alpha: .nan, seed: 2)
                .with(options: ["l0_coefficient": lambda, "bandwidth": 0.05, "threshold": 0.05]), dims: [16], expansion: 4)
            let log = try GroupTrainer(optimizer: AdamConfig(lr: 3e-3), batchSize: 128, logEvery: 100)
                .train(group, source: data, steps: 300, context: .silent)
            return (group[0], log)
        }
        let (loose, looseLog) = try train(0)
        let (tight, tightLog) = try train(0.05)
        XCTAssertLessThan(tightLog.rows.last!.l0, 0.7 * looseLog.rows.last!.l0, "the L0 penalty lowers L0")
        XCTAssertTrue(tight.extraParameters[0].allSatisfy { $0 >= 0 })
        XCTAssertGreaterThan(tight.extraParameters[0].max()!, 0.05, "thresholds moved up from their start")
        XCTAssertNotEqual(loose.extraParameters[0], tight.extraParameters[0])
    }

    func testSAELensJumpReLUFoldersLoadAsJumpReLU() throws {
        for name in ["jumprelu", "batchtopk_trained"] {
            try SAELens6Tests.checkAgainstSAELens(name, as: .jumprelu)
        }
        let folder = TestPaths.temporaryFolder("jump")
        let sae = try SAELensIO.load(SAELens6Tests.root + "/jumprelu")[0]
        try SAELensIO.save(sae, to: folder + "/j")
        let back = try SAELensIO.load(folder + "/j")[0]
        XCTAssertEqual(back.extraParameters, sae.extraParameters)
        let x = try SAELens6Tests.expected.matrix("jumprelu.x")
        XCTAssertEqual(try back.reconstruct(x), try sae.reconstruct(x))
        // A jumprelu folder without its thresholds is refused.
        try SafeTensors.write([TensorToWrite(name: "W_enc", matrix: sae.W_enc), TensorToWrite(name: "W_dec", matrix: sae.W_dec),
                               TensorToWrite(name: "b_enc", vector: sae.b_enc), TensorToWrite(name: "b_dec", vector: sae.b_dec)],
                              to: folder + "/j/sae_weights.safetensors")
        XCTAssertThrowsMessage(try SAELensIO.load(folder + "/j"), contains: ["jumprelu folder needs the tensor threshold"])
    }

    func testCheckpointKeepsThresholdsAndTheirAdamState() throws {
        let data = try SyntheticData(d: 8, features: 16, active: 2, norms: [1], seed: 6)
        let group = try SAEGroup(saes: [try makeJumpReLU(dIn: 8, dSAE: 16)])
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: 1e-2), batchSize: 32, logEvery: 5)
        try trainer.train(group, source: data, steps: 5, context: .silent)
        let path = TestPaths.temporaryFolder("ckpt") + "/c.safetensors"
        try Checkpoint.save(group, optimizer: trainer.optimizer, to: path)
        let (loaded, _) = try Checkpoint.load(path)
        XCTAssertEqual(loaded[0].extraParameters, group[0].extraParameters)
        try trainer.train(group, source: try SyntheticData(d: 8, features: 16, active: 2, norms: [1], seed: 7), steps: 3, context: .silent)
        try trainer.train(loaded, source: try SyntheticData(d: 8, features: 16, active: 2, norms: [1], seed: 7), steps: 3, context: .silent)
        XCTAssertEqual(loaded[0].extraParameters, group[0].extraParameters, "resumed training takes the same steps")
        XCTAssertEqual(loaded[0].W_dec, group[0].W_dec)
    }
}
