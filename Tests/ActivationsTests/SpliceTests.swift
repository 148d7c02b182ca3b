import Foundation
import XCTest
import Tensor
import GPT2
@testable import Activations

final class SpliceTests: XCTestCase {
    private static let model = Result { try GPT2Model.load(path: Fixtures.tinyModel) }

    /// The reference has no BOS, so excluding BOS changes nothing; its KL averages over all T positions and its CE
    /// over the T−1 predictions, which is what the evaluator does for BOS-free sequences.
    func testZeroSAEReproducesTheReferenceZeroAblationAndIdentityScoresOne() throws {
        let model = try Self.model.get()
        // Two of the three texts keep the debug-build runtime low (each pass takes softmaxes over 50257 logits).
        XCTAssertEqual(try Fixtures.referenceTexts().count, 3, "the loop below checks texts 0 and 2")
        for (n, text) in try Fixtures.referenceTexts().enumerated() where n != 1 {
            let targets = [
                SpliceTarget(hook: "blocks.1.hook_mlp_out") { Matrix(rows: $0.rows, cols: $0.cols) },
                SpliceTarget(hook: "blocks.1.hook_mlp_out") { $0 },
            ]
            let results = try SpliceEvaluator.evaluate(model: model, targets: targets, sequences: [text.ids])
            let zero = results[0], identity = results[1]
            XCTAssertEqual(zero.ceClean, text.ce, accuracy: 1e-4)
            XCTAssertEqual(zero.ceZero, text.zeroCE, accuracy: 1e-4)
            XCTAssertEqual(zero.klZero, text.zeroKL, accuracy: 1e-5)
            XCTAssertEqual(zero.ceRecon, zero.ceZero, accuracy: 1e-6)
            XCTAssertEqual(zero.score, 0, accuracy: 1e-4)
            XCTAssertEqual(zero.predictions, text.ids.count - 1)
            XCTAssertEqual(zero.positions, text.ids.count)
            XCTAssertEqual(identity.ceRecon, identity.ceClean, accuracy: 1e-6)
            XCTAssertEqual(identity.score, 1, accuracy: 1e-3)
            XCTAssertEqual(identity.klRecon, 0, accuracy: 1e-6)
            XCTAssertEqual(identity.klScore, 1, accuracy: 1e-3)
        }
    }

    func testBOSPositionsAreExcludedAndLeftUnpatched() throws {
        let model = try Self.model.get()
        let ids = try Fixtures.referenceTexts()[0].ids
        let withBOS = [endOfTextToken] + ids
        // A "reconstruction" that is garbage only at BOS rows: left unpatched there, it must change nothing.
        let bosOnly = SpliceTarget(hook: "blocks.0.hook_resid_post") { x in
            var y = x
            for r in 0..<y.rows where r % withBOS.count == 0 { for c in 0..<y.cols { y[r, c] = 100 } }
            return y
        }
        let r = try SpliceEvaluator.evaluate(model: model, targets: [bosOnly], sequences: [withBOS])[0]
        XCTAssertEqual(r.klRecon, 0, accuracy: 1e-7)
        XCTAssertEqual(r.positions, ids.count)
        XCTAssertEqual(r.predictions, ids.count - 1)   // the prediction made at BOS is left out

        var options = SpliceEvaluator.Options()
        options.excludeBOS = false
        let patchedEverywhere = try SpliceEvaluator.evaluate(model: model, targets: [bosOnly], sequences: [withBOS], options: options)[0]
        XCTAssertGreaterThan(patchedEverywhere.klRecon, 1e-4)
        XCTAssertEqual(patchedEverywhere.positions, withBOS.count)

        // Zero ablation covers BOS by default (SAELens) and spares it with .exceptBOS: the figures must differ.
        let zero = SpliceTarget(hook: "blocks.0.hook_attn_out") { $0 }
        var spare = SpliceEvaluator.Options()
        spare.zeroAblation = .exceptBOS
        let all = try SpliceEvaluator.evaluate(model: model, targets: [zero], sequences: [withBOS])[0]
        let except = try SpliceEvaluator.evaluate(model: model, targets: [zero], sequences: [withBOS], options: spare)[0]
        XCTAssertNotEqual(all.klZero, except.klZero)
        XCTAssertEqual(all.score, 1, accuracy: 1e-3)
    }

    func testUnknownHookIsRejected() throws {
        let model = try Self.model.get()
        XCTAssertThrowsMessage(try SpliceEvaluator.evaluate(model: model, targets: [SpliceTarget(hook: "blocks.7.hook_mlp_out") { $0 }], sequences: [[1, 2]]),
                               contains: ["blocks.7.hook_mlp_out", "out of range"])
    }

    func testLogitLensMatchesADirectProduct() throws {
        let model = try Self.model.get()
        var rng = RNG(seed: 4)
        let v = (0..<model.config.nEmbd).map { _ in rng.normal() }
        let lens = try LogitLens.compute(model: model, direction: v, k: 5)
        let wte = model.weights.tokenEmbedding, gamma = model.weights.lnFinalWeight
        let logits = (0..<wte.rows).map { t in (0..<wte.cols).map { Double(wte[t, $0]) * Double(v[$0] * gamma[$0]) }.reduce(0, +) }
        let order = logits.indices.sorted { logits[$0] > logits[$1] }
        XCTAssertEqual(lens.promoted.map { Int($0.token) }, Array(order.prefix(5)))
        XCTAssertEqual(lens.suppressed.map { Int($0.token) }, Array(order.suffix(5).reversed()))
        XCTAssertEqual(Double(lens.promoted[0].logit), logits[order[0]], accuracy: 1e-4)
        XCTAssertEqual(lens.promoted[0].text, model.tokenizer!.tokenString(lens.promoted[0].token))
    }
}
