import XCTest
@testable import SAE
@testable import Tensor

final class ScaledInitializationTests: XCTestCase {
    func testScalingKeepsDirectionsAndMovesScale() throws {
        let sae = try SAERegistry.make("nsae", dIn: 8, dSAE: 16, alpha: 1e-3, seed: 3)
        let before = sae.W_dec, encBefore = sae.W_enc
        try sae.scaleToInputNorm(50)
        for j in 0..<16 {
            var n: Float = 0
            for i in 0..<8 { n += sae.W_dec[j, i] * sae.W_dec[j, i]; XCTAssertEqual(sae.W_dec[j, i], before[j, i] * 50, accuracy: 1e-4) }
            XCTAssertEqual(n.squareRoot(), 50, accuracy: 1e-3, "decoder rows start at the input scale")
        }
        for i in 0..<8 { for j in 0..<16 { XCTAssertEqual(sae.W_enc[i, j], encBefore[i, j] / 50, accuracy: 1e-6) } }
        // Pre-activations of an input at the layer's scale are O(1): at most ‖x‖/50 = 1 for ‖x‖ = 50.
        var rng = RNG(seed: 1)
        var x = rng.normalMatrix(4, 8)
        for r in 0..<4 {
            var n: Float = 0
            for c in 0..<8 { n += x[r, c] * x[r, c] }
            for c in 0..<8 { x[r, c] *= 50 / n.squareRoot() }
        }
        let pre = BLAS.matmul(x, sae.W_enc)
        XCTAssert(pre.data.allSatisfy { abs($0) <= 1.0001 })
    }

    func testReluAndBadNormsAreRefused() throws {
        let relu = try SAERegistry.make("relu", dIn: 4, dSAE: 8, alpha: 1e-3, seed: 1)
        XCTAssertThrowsError(try relu.scaleToInputNorm(3)) { XCTAssert("\($0)".contains("unit-norm decoder")) }
        let nsae = try SAERegistry.make("nsae", dIn: 4, dSAE: 8, alpha: 1e-3, seed: 1)
        XCTAssertThrowsError(try nsae.scaleToInputNorm(0)) { XCTAssert("\($0)".contains("positive and finite")) }
        XCTAssertThrowsError(try nsae.scaleToInputNorm(.nan))
    }
}
