import Foundation
import XCTest
@testable import GPT2
import Tensor

/// The forward pass against Hugging Face's outputs for the tiny random GPT-2 (../shared/data/gpt2-tiny).
final class ForwardTests: XCTestCase {
    let hookKinds: [HookPoint.Kind] = [.residPre, .attnOut, .mlpOut, .residPost]

    func testLogitsAndEveryHookMatchReference() throws {
        let model = try Fixtures.tinyModel()
        let ref = try Fixtures.referenceFile()
        for (n, text) in Fixtures.reference.enumerated() {
            XCTAssertEqual(try ref.int32s("text\(n).ids"), text.ids)
            let names = Set((0..<2).flatMap { l in hookKinds.map { HookPoint.name(layer: l, kind: $0) } })
            let out = try model.forward(tokens: text.ids, batch: 1, seqLen: text.ids.count, captures: names)
            let logits = try XCTUnwrap(out.logits)
            XCTAssertEqual(logits.shape, [text.ids.count, 50257])
            XCTAssertLessThan(Fixtures.maxAbsDiff(logits.data, try ref.floats("text\(n).logits")), 1e-4, "text \(n) logits")
            for name in names {
                let got = try XCTUnwrap(out.captures[name], name)
                XCTAssertEqual(got.shape, [text.ids.count, 32])
                XCTAssertLessThan(Fixtures.maxAbsDiff(got.data, try ref.floats("text\(n).\(name)")), 1e-4, "text \(n) \(name)")
            }
        }
    }

    /// Two sequences in one batch: causality means text 1's first 22 positions equal its reference rows.
    func testBatchedForwardMatchesPerSequenceReference() throws {
        let model = try Fixtures.tinyModel()
        let ref = try Fixtures.referenceFile()
        let a = Fixtures.reference[0].ids, b = Array(Fixtures.reference[1].ids.prefix(a.count))
        let T = a.count
        let out = try model.forward([a, b], captures: ["blocks.1.hook_resid_post"])
        let logits = try XCTUnwrap(out.logits)
        XCTAssertLessThan(Fixtures.maxAbsDiff(Array(logits.data[0..<(T * 50257)]), try ref.floats("text0.logits")), 1e-4)
        XCTAssertLessThan(Fixtures.maxAbsDiff(Array(logits.data[(T * 50257)...]),
                                              Array(try ref.floats("text1.logits")[0..<(T * 50257)])), 1e-4)
        let resid = try XCTUnwrap(out.captures["blocks.1.hook_resid_post"])
        XCTAssertLessThan(Fixtures.maxAbsDiff(Array(resid.data[(T * 32)...]),
                                              Array(try ref.floats("text1.blocks.1.hook_resid_post")[0..<(T * 32)])), 1e-4)
    }

    func testResidMidAndEmbeddingHooksAreConsistent() throws {
        let model = try Fixtures.tinyModel()
        let ref = try Fixtures.referenceFile()
        let ids = Fixtures.reference[2].ids
        let out = try model.forward(tokens: ids, batch: 1, seqLen: ids.count,
                                    captures: ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_mid", "ln_final.hook_normalized"],
                                    logits: false)
        let pre = try ref.floats("text2.blocks.0.hook_resid_pre"), attn = try ref.floats("text2.blocks.0.hook_attn_out")
        let mid = try XCTUnwrap(out.captures["blocks.0.hook_resid_mid"])
        XCTAssertLessThan(Fixtures.maxAbsDiff(mid.data, zip(pre, attn).map(+)), 1e-4)
        let embed = try XCTUnwrap(out.captures["hook_embed"]), pos = try XCTUnwrap(out.captures["hook_pos_embed"])
        XCTAssertLessThan(Fixtures.maxAbsDiff(zip(embed.data, pos.data).map(+), pre), 1e-6)
        XCTAssertEqual(embed.row(3), model.weights.tokenEmbedding.row(Int(ids[3])))
        XCTAssertEqual(pos.row(3), model.weights.positionEmbedding.row(3))
        // ln_final output times wteᵀ is the logits.
        let lnf = try XCTUnwrap(out.captures["ln_final.hook_normalized"])
        let logits = BLAS.matmul(lnf, model.weights.tokenEmbedding, transB: true)
        XCTAssertLessThan(Fixtures.maxAbsDiff(logits.data, try ref.floats("text2.logits")), 1e-4)
        XCTAssertNil(out.logits)
    }

    func testCrossEntropyAndZeroAblationMatchReference() throws {
        let model = try Fixtures.tinyModel()
        for text in Fixtures.reference {
            let T = text.ids.count
            let clean = try XCTUnwrap(try model.forward(tokens: text.ids, batch: 1, seqLen: T).logits)
            let ce = try Losses.meanCrossEntropy(logits: clean, tokens: text.ids, batch: 1, seqLen: T)
            XCTAssertEqual(Double(ce), text.ce, accuracy: text.ce * 1e-5)
            let zeroed = try XCTUnwrap(try model.forward(tokens: text.ids, batch: 1, seqLen: T,
                                                         patches: ["blocks.1.hook_mlp_out": .zeros()]).logits)
            let zeroCE = try Losses.meanCrossEntropy(logits: zeroed, tokens: text.ids, batch: 1, seqLen: T)
            XCTAssertEqual(Double(zeroCE), text.zeroCE, accuracy: text.zeroCE * 1e-5)
            let kl = Losses.mean(try Losses.klDivergence(clean: clean, patched: zeroed))
            XCTAssertEqual(Double(kl), text.zeroKL, accuracy: text.zeroKL * 1e-5)
        }
    }

    /// Brute-force check of the loss formulas on a small made-up matrix.
    func testLossesAgainstDirectFormulas() throws {
        var rng = RNG(seed: 3)
        let V = 37, B = 2, T = 3
        let a = rng.normalMatrix(B * T, V, std: 3), b = rng.normalMatrix(B * T, V, std: 3)
        let tokens: [Int32] = [1, 5, 36, 0, 0, 7]
        func logSoftmax(_ m: Matrix, _ r: Int) -> [Double] {
            let row = m.row(r).map(Double.init)
            let mx = row.max()!
            let lse = mx + log(row.map { exp($0 - mx) }.reduce(0, +))
            return row.map { $0 - lse }
        }
        let ce = try Losses.crossEntropy(logits: a, tokens: tokens, batch: B, seqLen: T)
        XCTAssertEqual(ce.count, B * (T - 1))
        for bi in 0..<B { for t in 0..<(T - 1) {
            XCTAssertEqual(Double(ce[bi * (T - 1) + t]), -logSoftmax(a, bi * T + t)[Int(tokens[bi * T + t + 1])], accuracy: 1e-5)
        } }
        let kl = try Losses.klDivergence(clean: a, patched: b)
        for r in 0..<(B * T) {
            let p = logSoftmax(a, r), q = logSoftmax(b, r)
            let want = zip(p, q).map { exp($0) * ($0 - $1) }.reduce(0, +)
            XCTAssertEqual(Double(kl[r]), want, accuracy: 1e-5 * max(1, want))
        }
        XCTAssertEqual(try Losses.klDivergence(clean: a, patched: a).max()!, 0, accuracy: 1e-6)
        // Excluding predictions made at input token 0 drops the pair (b=1, t=0) and (b=1, t=1).
        let meanSkip = try Losses.meanCrossEntropy(logits: a, tokens: tokens, batch: B, seqLen: T, excludingInputToken: 0)
        XCTAssertEqual(Double(meanSkip), Double(ce[0] + ce[1]) / 2, accuracy: 1e-5)
        XCTAssertThrowsError(try Losses.klDivergence(clean: a, patched: Matrix(rows: 1, cols: V))) {
            XCTAssertTrue("\($0)".contains("patched are [1, 37]"), "\($0)")
        }
    }

    /// The fused CE+KL that splice evaluation uses (clean log-sum-exp computed once, rows split over the cores)
    /// agrees with the separate functions, on rows as wide as GPT-2's vocabulary and more rows than cores.
    func testFusedCrossEntropyAndKLMatchTheSeparateFunctions() throws {
        var rng = RNG(seed: 5)
        let V = 50257, B = 3, T = 5
        let clean = rng.normalMatrix(B * T, V, std: 4), patched = rng.normalMatrix(B * T, V, std: 4)
        let tokens: [Int32] = (0..<(B * T)).map { Int32(($0 * 7919) % V) }
        let fused = try Losses.crossEntropyAndKL(clean: clean, cleanLogSumExp: Losses.rowLogSumExp(clean), patched: patched,
                                                 tokens: tokens, batch: B, seqLen: T)
        let ce = try Losses.crossEntropy(logits: patched, tokens: tokens, batch: B, seqLen: T)
        let kl = try Losses.klDivergence(clean: clean, patched: patched)
        XCTAssertEqual(fused.ce, ce)
        XCTAssertEqual(fused.kl, kl)
        // Against a direct double-precision formula for one row.
        let r = 7
        let p = clean.row(r).map(Double.init), q = patched.row(r).map(Double.init)
        let pMax = p.max()!, qMax = q.max()!
        let lp = pMax + log(p.map { exp($0 - pMax) }.reduce(0, +)), lq = qMax + log(q.map { exp($0 - qMax) }.reduce(0, +))
        let want = zip(p, q).map { exp($0 - lp) * (($0 - lp) - ($1 - lq)) }.reduce(0, +)
        XCTAssertEqual(Double(fused.kl[r]), want, accuracy: 1e-4 * want)
        XCTAssertThrowsError(try Losses.crossEntropyAndKL(clean: clean, cleanLogSumExp: [0], patched: patched, tokens: tokens,
                                                          batch: B, seqLen: T)) {
            XCTAssertTrue("\($0)".contains("1 log-sum-exps"), "\($0)")
        }
        XCTAssertThrowsError(try Losses.crossEntropyAndKL(clean: clean, cleanLogSumExp: Losses.rowLogSumExp(clean), patched: patched,
                                                          tokens: tokens, batch: B, seqLen: T + 1)) {
            XCTAssertTrue("\($0)".contains("expected batch 3 × seqLen 6 = 18"), "\($0)")
        }
        XCTAssertThrowsError(try Losses.crossEntropyAndKL(clean: clean, cleanLogSumExp: Losses.rowLogSumExp(clean), patched: patched,
                                                          tokens: tokens.map { _ in -1 }, batch: B, seqLen: T)) {
            XCTAssertTrue("\($0)".contains("token id -1 at position 0"), "\($0)")
        }
        XCTAssertThrowsError(try Losses.crossEntropy(logits: patched, logSumExp: Losses.rowLogSumExp(patched),
                                                     tokens: tokens.map { _ in Int32(V) }, batch: B, seqLen: T)) {
            XCTAssertTrue("\($0)".contains("outside the 50257 logit columns"), "\($0)")
        }
    }
}
