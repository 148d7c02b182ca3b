import XCTest
import Tensor
@testable import SAE

/// The hand-written backward pass against central finite differences of the loss, for every parameter entry.
final class GradientTests: XCTestCase {
    private func check(_ architecture: SAEArchitecture, mse: MSEMode, beta: BetaMode = .batch, noise: Bool) throws {
        let sae = try makeRandomSAE(architecture, mse: mse, beta: beta)
        var drng = RNG(seed: 77)
        let x = drng.normalMatrix(5, sae.dIn, std: 1.5)
        // A noise draw that leaves no pre-activation within the step of the ReLU kink for b_dec (which moves
        // every pre-activation at once); the check is then valid for every entry.
        var noiseRNG = RNG(seed: 12345)
        for candidate in 0..<50 {
            noiseRNG = RNG(seed: 12345 + UInt64(candidate))
            if try kinkFree(sae, x, noise: noise, noiseRNG) { break }
        }
        var r = noiseRNG
        let (terms, grads) = try sae.lossAndGradients(x, noise: noise, rng: &r)
        XCTAssertGreaterThan(terms.l0, 1, "the test needs active features")
        XCTAssertGreaterThan(terms.l1Term, 0.02 * terms.loss, "the L1 term must matter for the check to see it")

        func activeSet() throws -> [Float] {
            var r = noiseRNG
            return try sae.encode(x, noise: noise, rng: &r).data.map { $0 > 0 ? 1 : 0 }
        }
        let baseActive = try activeSet()
        func lossValue() throws -> Double { var r = noiseRNG; return try sae.loss(x, noise: noise, rng: &r).loss }

        // Perturb one entry through a setter, difference the loss, restore.
        func fd(_ get: () -> Float, _ set: (Float) throws -> Void) throws -> Double? {
            let h: Float = 2e-3
            let v = get()
            try set(v + h); let up = try lossValue(); let upActive = try activeSet()
            try set(v - h); let down = try lossValue(); let downActive = try activeSet()
            try set(v)
            // A perturbation that switches a feature on or off crosses the ReLU kink: the derivative is undefined.
            guard upActive == baseActive, downActive == baseActive else { return nil }
            return (up - down) / Double(2 * h)
        }
        func compare(_ name: String, analytic: [Float], numeric: [Double?]) {
            var num2 = 0.0, err2 = 0.0, used = 0
            for (a, n) in zip(analytic, numeric) {
                guard let n else { continue }
                num2 += n * n; err2 += (Double(a) - n) * (Double(a) - n); used += 1
            }
            XCTAssertGreaterThan(used, analytic.count / 2, "\(name): too few entries away from kinks")
            XCTAssertGreaterThan(num2, 1e-6, "\(name): gradient is zero, the check would be vacuous")
            XCTAssertLessThan((err2 / num2).squareRoot(), 1e-2, "\(name) [\(architecture) mse=\(mse) beta=\(beta) noise=\(noise)]: analytic \(analytic.prefix(6)) numeric \(numeric.prefix(6))")
        }

        var wEnc = sae.W_enc
        var numeric: [Double?] = []
        for i in 0..<wEnc.count {
            numeric.append(try fd({ wEnc.data[i] }, { wEnc.data[i] = $0; try sae.setParameters(W_enc: wEnc) }))
        }
        compare("W_enc", analytic: grads.W_enc.data, numeric: numeric)

        var wDec = sae.W_dec
        numeric = []
        for i in 0..<wDec.count {
            numeric.append(try fd({ wDec.data[i] }, { wDec.data[i] = $0; try sae.setParameters(W_dec: wDec) }))
        }
        compare("W_dec", analytic: grads.W_dec.data, numeric: numeric)

        var bEnc = sae.b_enc
        numeric = []
        for i in 0..<bEnc.count {
            numeric.append(try fd({ bEnc[i] }, { bEnc[i] = $0; try sae.setParameters(b_enc: bEnc) }))
        }
        compare("b_enc", analytic: grads.b_enc, numeric: numeric)

        var bDec = sae.b_dec
        numeric = []
        for i in 0..<bDec.count {
            numeric.append(try fd({ bDec[i] }, { bDec[i] = $0; try sae.setParameters(b_dec: bDec) }))
        }
        compare("b_dec", analytic: grads.b_dec, numeric: numeric)
    }

    private func kinkFree(_ sae: SAE, _ x: Matrix, noise: Bool, _ noiseRNG: RNG) throws -> Bool {
        func active() throws -> [Bool] { var r = noiseRNG; return try sae.encode(x, noise: noise, rng: &r).data.map { $0 > 0 } }
        let base = try active(), bDec = sae.b_dec
        defer { try? sae.setParameters(b_dec: bDec) }
        for i in bDec.indices {
            for h: Float in [-2e-3, 2e-3] {
                var b = bDec; b[i] += h
                try sae.setParameters(b_dec: b)
                if try active() != base { return false }
            }
        }
        return true
    }

    func testReLUSum() throws { try check(.relu, mse: .sum, noise: false) }
    func testReLUMean() throws { try check(.relu, mse: .mean, noise: false) }
    func testNSAESumWithNoise() throws { try check(.nsae, mse: .sum, noise: true) }
    func testNSAEMeanWithNoise() throws { try check(.nsae, mse: .mean, noise: true) }
    func testNSAEWithoutNoise() throws { try check(.nsae, mse: .sum, noise: false) }
    func testNSAELayerBeta() throws { try check(.nsae, mse: .sum, beta: .layer, noise: true) }

    /// The loss terms against a direct evaluation of the formulas in Double.
    func testLossTermsMatchTheFormulas() throws {
        for arch in [SAEArchitecture.relu, .nsae] {   // the L1-penalised kinds; TopKTests covers topk's terms
            for mse in MSEMode.allCases {
                let sae = try makeRandomSAE(arch, mse: mse)
                var drng = RNG(seed: 5)
                let x = drng.normalMatrix(7, sae.dIn, std: 2)
                var r = RNG(seed: 1)
                let terms = try sae.loss(x, noise: false, rng: &r)
                let c = try sae.encode(x, noise: false, rng: &r)
                let xr = try sae.decode(c)
                var sq = 0.0, l1 = 0.0, norms = 0.0
                for b in 0..<x.rows {
                    var nx = 0.0
                    for i in 0..<x.cols { let d = Double(xr[b, i] - x[b, i]); sq += d * d; nx += Double(x[b, i] * x[b, i]) }
                    norms += nx.squareRoot()
                    for j in 0..<c.cols { l1 += Double(c[b, j]) }
                }
                let B = Double(x.rows)
                let meanNorm = norms / B
                let beta = arch == .relu ? 0.3 : 0.3 * meanNorm * meanNorm
                let mseTerm = mse == .sum ? sq / B : sq / (B * Double(x.cols))
                XCTAssertEqual(terms.beta, beta, accuracy: 1e-6 * beta)
                XCTAssertEqual(terms.mseTerm, mseTerm, accuracy: 1e-5 * mseTerm)
                XCTAssertEqual(terms.l1Term, beta * l1 / B, accuracy: 1e-5 * beta * l1 / B)
                XCTAssertEqual(terms.loss, terms.mseTerm + terms.l1Term, accuracy: 1e-12)
                if arch == .nsae { XCTAssertTrue(c.data.allSatisfy { $0 >= 0 && $0 < 1 }, "tanh(ReLU) codes lie in [0, 1)") }
            }
        }
    }
}
