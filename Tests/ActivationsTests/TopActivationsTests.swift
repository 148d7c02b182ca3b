import Foundation
import XCTest
import Tensor
import SAE
@testable import Activations

final class TopActivationsTests: XCTestCase {
    /// A random ReLU encoder [d → m] standing in for an SAE. Row by row in a fixed order, so a row's codes do not
    /// depend on which chunk it was encoded in (a blocked matmul would round differently per chunk size).
    private func encoder(d: Int, m: Int) -> (Matrix) -> Matrix {
        var rng = RNG(seed: 9)
        let w = rng.normalMatrix(d, m, std: 0.5)
        let b = (0..<m).map { _ in rng.normal() * 3 - 1 }
        return { x in
            var c = Matrix(rows: x.rows, cols: m)
            for r in 0..<x.rows {
                for j in 0..<m {
                    var s = b[j]
                    for i in 1..<d { s += x[r, i] * w[i, j] }   // column 0 holds the row index: left out
                    c[r, j] = max(0, s)
                }
            }
            return c
        }
    }

    func testTopKEqualsBruteForceForEveryFeature() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 400)
        let encode = encoder(d: 8, m: 24)
        var options = TopActivations.Options()
        options.k = 7; options.bottomK = 4; options.randomK = 5; options.chunkRows = 33
        let summaries = try TopActivations.scan(store: store, hook: 0, options: options, encode: encode)
        XCTAssertEqual(summaries.count, 24)

        let codes = encode(syntheticRows(hook: 0, rows: 0..<400, d: 8))
        let rows = (0..<400).filter { $0 % 10 != 0 }   // BOS rows excluded
        for s in summaries {
            let active = rows.map { FeatureHit(activation: codes[$0, s.feature], token: $0) }.filter { $0.activation > 0 }
            let top = active.sorted { ($0.activation, -$0.token) > ($1.activation, -$1.token) }.prefix(7)
            let bottom = active.sorted { ($0.activation, $0.token) < ($1.activation, $1.token) }.prefix(4)
            XCTAssertEqual(s.top, Array(top), "feature \(s.feature)")
            XCTAssertEqual(s.bottom, Array(bottom), "feature \(s.feature)")
            XCTAssertEqual(s.activeCount, active.count)
            XCTAssertEqual(s.tokensScanned, rows.count)
            XCTAssertEqual(s.density, Double(active.count) / Double(rows.count), accuracy: 1e-12)
            XCTAssertEqual(s.histogram.reduce(0, +), active.count)
            XCTAssertEqual(s.random.count, min(5, active.count))
            XCTAssertTrue(s.random.allSatisfy { hit in active.contains(hit) })
            if !active.isEmpty {
                XCTAssertEqual(s.meanActive, active.map { Double($0.activation) }.reduce(0, +) / Double(active.count), accuracy: 1e-4)
            }
        }
        XCTAssertTrue(summaries.contains { $0.activeCount > 7 }, "the test needs features that fire more than k times")

        // One feature alone gives the same answer as the all-features pass.
        let single = try TopActivations.scan(store: store, hook: 0, features: [5], options: options, encode: encode)
        XCTAssertEqual(single[0].top, summaries[5].top)
    }

    func testContextStaysInsideItsWindow() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 100, window: 10)
        let example = try store.context(of: FeatureHit(activation: 1, token: 42), before: 5, after: 10,
                                        tokenString: { "<\($0)>" })
        XCTAssertEqual(example.tokenIds, [endOfTextToken] + (41..<50).map { Int32($0 % 50) })
        XCTAssertEqual(example.focus, 2)
        XCTAssertEqual(example.tokens[2], "<42>")
        let plain = try store.context(of: FeatureHit(activation: 1, token: 45), before: 2, after: 2)
        XCTAssertEqual(plain.tokens, ["43", "44", "45", "46", "47"])
        XCTAssertThrowsMessage(try store.context(of: FeatureHit(activation: 1, token: 100)), contains: ["outside 0..<100"])
    }

    func testCodesOnlyEncoderMatchesTheSAEsOwnEncoder() throws {
        var rng = RNG(seed: 21)
        let x = rng.normalMatrix(40, 8)
        for architecture in ["relu", "nsae"] {
            let sae = try SAERegistry.make(architecture, dIn: 8, dSAE: 32, alpha: 0.01, seed: 2)
            try sae.setParameters(b_enc: (0..<32).map { _ in rng.normal() * 0.5 }, b_dec: (0..<8).map { _ in rng.normal() })
            let encode = try XCTUnwrap(TopActivations.codesOnlyEncoder(for: sae))
            let fast = try encode(x), reference = try sae.encode(x)
            XCTAssertEqual(fast.rows, reference.rows)
            XCTAssertLessThan(zip(fast.data, reference.data).map { abs($0 - $1) }.max()!, 1e-5, architecture)
            XCTAssertGreaterThan(fast.data.filter { $0 > 0 }.count, 40, "some codes must be active")
            XCTAssertLessThan(fast.data.filter { $0 > 0 }.count, 40 * 32, "some codes must be inactive")
        }
        let noisy = try SAERegistry.make("nsae", dIn: 8, dSAE: 32, alpha: 0.01, noise: .always)
        XCTAssertNil(TopActivations.codesOnlyEncoder(for: noisy))
    }

    /// An NSAE feature whose pre-activation is 0.5 × the row index: tanh saturates to 1.0 from row ~18 on, so by the
    /// code alone the top hits tie and came out in token order (rows 11, 12, 13…). Ranked by the pre-activation,
    /// they are the largest rows, each with both numbers; a ReLU SAE has no pre-activation column.
    func testSaturatedNSAECodesAreRankedByThePreActivation() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 400)
        let template = try SAERegistry.make("nsae", dIn: 8, dSAE: 4, alpha: 0.01, seed: 1)
        var wEnc = Matrix(rows: 8, cols: 4)
        wEnc[0, 0] = 0.5                           // column 0 of the store's rows is the row index
        let nsae = try SAE(config: template.config, W_enc: wEnc, b_enc: [0, 0, 0, 0], W_dec: Matrix(rows: 4, cols: 8),
                           b_dec: [Float](repeating: 0, count: 8))
        var options = TopActivations.Options()
        options.k = 5
        let top = try TopActivations.scan(store: store, hook: 0, sae: nsae, features: [0], options: options)[0].top
        XCTAssertEqual(top.map(\.activation), [1, 1, 1, 1, 1], "the codes saturate: ranking by them is arbitrary")
        XCTAssertEqual(top.map(\.token), [399, 398, 397, 396, 395])
        XCTAssertEqual(top.map(\.preActivation), [199.5, 199, 198.5, 198, 197.5])
        let byCode = try TopActivations.scan(store: store, hook: 0, features: [0], options: options,
                                             encode: try XCTUnwrap(TopActivations.codesOnlyEncoder(for: nsae)))[0].top
        XCTAssertEqual(byCode.map(\.token), [19, 21, 22, 23, 24], "by the tied codes alone, the first saturated rows win")

        let relu = try SAE(config: try SAERegistry.make("relu", dIn: 8, dSAE: 4, alpha: 0.01).config, W_enc: wEnc,
                           b_enc: [0, 0, 0, 0], W_dec: Matrix(rows: 4, cols: 8), b_dec: [Float](repeating: 0, count: 8))
        let reluTop = try TopActivations.scan(store: store, hook: 0, sae: relu, features: [0], options: options)[0].top
        XCTAssertEqual(reluTop.map(\.token), [399, 398, 397, 396, 395])
        XCTAssertTrue(reluTop.allSatisfy { $0.preActivation == nil })
    }
}
