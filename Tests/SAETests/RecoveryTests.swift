import XCTest
import Tensor
@testable import SAE

/// Ground-truth recovery on synthetic data: 64 dims, 256 true unit features, 4 active per token.
final class RecoveryTests: XCTestCase {
    private func train(_ architecture: String, alpha: Float, lr: Float, steps: Int) throws -> (Double, SAE, [Double]) {
        let data = try SyntheticData(d: 64, features: 256, active: 4, norms: [1], seed: 7)
        let group = try SAEGroup.make(architecture, dims: [64], expansion: 4, alpha: alpha, sigma: 0.1, seed: 3)
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: lr), batchSize: 256, logEvery: steps / 4)
        var history: [Double] = []
        for _ in 0..<4 {
            try trainer.train(group, source: data, steps: steps / 4, context: .silent)
            history.append(try data.recovery(group[0]))
        }
        return (history.last!, group[0], history)
    }

    func testReLURecoversTheDictionary() throws {
        let t0 = Date()
        let (mmcs, _, history) = try train("relu", alpha: 0.5, lr: 1e-2, steps: 800)
        print("relu MMCS by quarter:", history, "in", Date().timeIntervalSince(t0), "s")
        XCTAssertGreaterThanOrEqual(mmcs, 0.9)
    }

    func testNSAERecoversTheDictionary() throws {
        let t0 = Date()
        let (mmcs, _, history) = try train("nsae", alpha: 0.05, lr: 1e-2, steps: 800)
        print("nsae MMCS by quarter:", history, "in", Date().timeIntervalSince(t0), "s")
        XCTAssertGreaterThanOrEqual(mmcs, 0.9)
    }
}
