import Foundation
import XCTest
@testable import GPT2
import Tensor

final class PatchTests: XCTestCase {
    func testHookNames() throws {
        XCTAssertEqual(HookPoint.name(layer: 3, kind: .mlpOut), "blocks.3.hook_mlp_out")
        XCTAssertEqual(try HookPoint.parse("blocks.3.hook_mlp_out"), .block(3, .mlpOut))
        XCTAssertEqual(try HookPoint.parse("resid_pre", layer: 2), .block(2, .residPre))
        XCTAssertEqual(try HookPoint.parse("hook_attn_out", layer: 0).name, "blocks.0.hook_attn_out")
        XCTAssertEqual(try HookPoint.parse("ln_final.hook_normalized"), .lnFinal)
        XCTAssertEqual(try HookPoint.parse("hook_embed"), .embed)
        XCTAssertEqual(HookPoint.all(nLayer: 2).count, 2 + 2 * 18 + 2)
        XCTAssertThrowsError(try HookPoint.parse("blocks.1.hook_mlp_outt")) { XCTAssertTrue("\($0)".contains("unknown hook 'blocks.1.hook_mlp_outt'"), "\($0)") }
        XCTAssertThrowsError(try HookPoint.parse("mlp_out")) { XCTAssertTrue("\($0)".contains("needs a layer"), "\($0)") }
        XCTAssertThrowsError(try HookPoint.parse("blocks.5.hook_resid_pre", nLayer: 2)) { XCTAssertTrue("\($0)".contains("layer 5 is out of range"), "\($0)") }
    }

    func testResumeFromCachedResidualEqualsFullRun() throws {
        let model = try Fixtures.tinyModel()
        let ids = Fixtures.reference[1].ids, T = ids.count
        let clean = try model.forward(tokens: ids, batch: 1, seqLen: T, captures: ["blocks.1.hook_resid_mid", "blocks.0.hook_resid_post"])
        let full = try model.forward(tokens: ids, batch: 1, seqLen: T, patches: ["blocks.1.hook_mlp_out": .zeros()])
        let mid = try XCTUnwrap(clean.captures["blocks.1.hook_resid_mid"])
        let resumed = try model.resume(from: "blocks.1.hook_resid_mid", value: mid, tokens: ids, batch: 1, seqLen: T,
                                       patches: ["blocks.1.hook_mlp_out": .zeros()])
        XCTAssertEqual(try XCTUnwrap(resumed.logits).data, try XCTUnwrap(full.logits).data)
        let post0 = try XCTUnwrap(clean.captures["blocks.0.hook_resid_post"])
        let again = try model.resume(from: "blocks.0.hook_resid_post", value: post0, tokens: ids, batch: 1, seqLen: T)
        XCTAssertEqual(try XCTUnwrap(again.logits).data, try XCTUnwrap(clean.logits).data)
        XCTAssertThrowsError(try model.resume(from: "blocks.1.hook_mlp_out", value: mid, tokens: ids, batch: 1, seqLen: T)) {
            XCTAssertTrue("\($0)".contains("cannot resume from blocks.1.hook_mlp_out"), "\($0)")
        }
        XCTAssertThrowsError(try model.resume(from: "blocks.1.hook_resid_mid", value: mid, tokens: ids, batch: 1, seqLen: T,
                                              captures: ["blocks.0.hook_mlp_out"])) {
            XCTAssertTrue("\($0)".contains("at or before the resume point"), "\($0)")
        }
    }

    /// Replacing a hook from a cached clean pass is the full forward with that hook patched: block outputs are
    /// added to the cached residual (no recomputation of their half), other hooks rerun their half from it.
    func testResumeReplacingAHookEqualsTheFullPatchedForward() throws {
        let model = try Fixtures.tinyModel()
        let T = 16
        let ids = Array(Fixtures.reference[0].ids.prefix(T)) + Array(Fixtures.reference[1].ids.prefix(T))
        let hooks = ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out", "blocks.1.hook_attn_out", "blocks.0.hook_resid_post",
                     "blocks.1.hook_resid_mid", "blocks.0.attn.hook_z", "blocks.1.mlp.hook_post", "blocks.1.ln2.hook_normalized"]
        let points = try hooks.map { try HookPoint.parse($0) }
        let befores = points.map { p -> String in
            guard case .block(let l, let k) = p else { return "" }
            return HookPoint.name(layer: l, kind: k.residualBefore)
        }
        let clean = try model.forward(tokens: ids, batch: 2, seqLen: T, captures: Set(befores + hooks))
        var rng = RNG(seed: 11)
        for (i, hook) in hooks.enumerated() {
            let cleanValue = try XCTUnwrap(clean.captures[hook])
            // The clean value moved far enough that every later logit changes.
            var value = cleanValue
            for k in value.data.indices { value.data[k] += 0.5 * rng.normal() }
            let full = try model.forward(tokens: ids, batch: 2, seqLen: T, captures: ["ln_final.hook_normalized"],
                                         patches: [hook: .values(value)])
            let resumed = try model.resume(replacing: hook, with: value, residualBefore: clean.captures[befores[i]],
                                           tokens: ids, batch: 2, seqLen: T, captures: ["ln_final.hook_normalized"])
            let a = try XCTUnwrap(full.logits), b = try XCTUnwrap(resumed.logits)
            XCTAssertEqual(a.count, b.count)
            let worst = zip(a.data, b.data).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-5, hook)
            XCTAssertEqual(try XCTUnwrap(resumed.captures["ln_final.hook_normalized"]).data.count, 2 * T * 32)
            let moved = zip(a.data, try XCTUnwrap(clean.logits).data).map { abs($0 - $1) }.max() ?? 0
            XCTAssertGreaterThan(moved, 1e-3, "\(hook): the replacement must change the logits for the comparison to mean anything")
        }
        func expect(_ fragment: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body()) { XCTAssertTrue("\($0)".contains(fragment), "'\($0)' lacks '\(fragment)'") }
        }
        let mlp = try XCTUnwrap(clean.captures["blocks.1.hook_mlp_out"])
        expect("the clean value of blocks.1.hook_resid_mid is needed") {
            _ = try model.resume(replacing: "blocks.1.hook_mlp_out", with: mlp, residualBefore: nil, tokens: ids, batch: 2, seqLen: T)
        }
        expect("value is [3, 32], expected [32, 32]") {
            _ = try model.resume(replacing: "blocks.1.hook_mlp_out", with: Matrix(rows: 3, cols: 32), residualBefore: mlp,
                                 tokens: ids, batch: 2, seqLen: T)
        }
        expect("cannot resume replacing blocks.0.attn.hook_pattern") {
            _ = try model.resume(replacing: "blocks.0.attn.hook_pattern", with: mlp, residualBefore: mlp, tokens: ids, batch: 2, seqLen: T)
        }
        expect("cannot also be patched") {
            _ = try model.resume(replacing: "blocks.1.hook_mlp_out", with: mlp, residualBefore: mlp, tokens: ids, batch: 2, seqLen: T,
                                 patches: ["blocks.1.hook_mlp_out": .zeros()])
        }
    }

    func testPassStopsAfterLastCaptureWithoutLogits() throws {
        let model = try Fixtures.tinyModel()
        let ids = Fixtures.reference[0].ids
        var laterHookRan = false
        let out = try model.forward(tokens: ids, batch: 1, seqLen: ids.count, captures: ["blocks.0.hook_mlp_out"],
                                    patches: ["blocks.1.hook_resid_pre": .transform { _ in laterHookRan = true }], logits: false)
        XCTAssertFalse(laterHookRan)
        XCTAssertNil(out.logits)
        XCTAssertEqual(out.captures.keys.sorted(), ["blocks.0.hook_mlp_out"])
        _ = try model.forward(tokens: ids, batch: 1, seqLen: ids.count, patches: ["blocks.1.hook_resid_pre": .transform { _ in laterHookRan = true }])
        XCTAssertTrue(laterHookRan)
    }

    func testPatchKindsAndPositionMasks() throws {
        let model = try Fixtures.tinyModel()
        let ids: [Int32] = [50256] + Fixtures.reference[0].ids.prefix(9), T = ids.count
        let hook = "blocks.0.hook_attn_out"
        let clean = try model.forward(tokens: ids, batch: 1, seqLen: T, captures: [hook])
        let cleanValue = try XCTUnwrap(clean.captures[hook])
        // Identity transform changes nothing.
        let same = try model.forward(tokens: ids, batch: 1, seqLen: T, patches: [hook: .transform { _ in }])
        XCTAssertEqual(same.logits, clean.logits)
        // Given values, except at the BOS position: the captured value is the patched one.
        let given = Matrix(rows: T, cols: 32, repeating: 0.5)
        let patched = try model.forward(tokens: ids, batch: 1, seqLen: T, captures: [hook],
                                        patches: [hook: .values(given, positions: .exceptToken(50256))])
        let v = try XCTUnwrap(patched.captures[hook])
        XCTAssertEqual(v.row(0), cleanValue.row(0))
        for r in 1..<T { XCTAssertEqual(v.row(r), [Float](repeating: 0.5, count: 32)) }
        // A transform scaling to zero equals zero ablation; a mask patches only the chosen rows.
        let scaled = try model.forward(tokens: ids, batch: 1, seqLen: T, patches: [hook: .transform { m in m.fill(0) }])
        let zeros = try model.forward(tokens: ids, batch: 1, seqLen: T, patches: [hook: .zeros()])
        XCTAssertEqual(scaled.logits, zeros.logits)
        let mapped = try model.forward(tokens: ids, batch: 1, seqLen: T, patches: [hook: .mapping { Matrix(rows: $0.rows, cols: $0.cols) }])
        XCTAssertEqual(mapped.logits, zeros.logits)
        XCTAssertThrowsError(try model.forward(tokens: ids, batch: 1, seqLen: T, patches: [hook: .mapping { _ in Matrix(rows: 1, cols: 1) }])) {
            XCTAssertTrue("\($0)".contains("the transform returned [1, 1], expected [10, 32]"), "\($0)")
        }
        XCTAssertNotEqual(zeros.logits, clean.logits)
        var mask = [Bool](repeating: false, count: T); mask[4] = true
        let one = try model.forward(tokens: ids, batch: 1, seqLen: T, captures: [hook], patches: [hook: .zeros(positions: .mask(mask))])
        let w = try XCTUnwrap(one.captures[hook])
        for r in 0..<T { XCTAssertEqual(w.row(r), r == 4 ? [Float](repeating: 0, count: 32) : cleanValue.row(r)) }
        // Causality: patching position 4 leaves earlier logits unchanged.
        let l1 = try XCTUnwrap(one.logits), l0 = try XCTUnwrap(clean.logits)
        XCTAssertEqual(Array(l1.data[0..<(4 * 50257)]), Array(l0.data[0..<(4 * 50257)]))
        XCTAssertNotEqual(l1.row(4), l0.row(4))
    }

    /// The forward switches OpenBLAS to one thread around its per-head work; the caller's setting must come back.
    func testForwardRestoresBLASThreadSetting() throws {
        let model = try Fixtures.tinyModel()
        let before = BLAS.threads
        defer { BLAS.setThreads(before) }
        for threads in [2, 1] {
            BLAS.setThreads(threads)
            _ = try model.forward(tokens: Fixtures.reference[0].ids, batch: 1, seqLen: 22, captures: ["blocks.1.hook_resid_post"], logits: false)
            XCTAssertEqual(BLAS.threads, threads)
        }
    }

    func testCancelledForwardStops() throws {
        let model = try Fixtures.tinyModel()
        let flag = CancellationFlag()
        flag.cancel()
        XCTAssertThrowsError(try model.forward(tokens: [1, 2], batch: 1, seqLen: 2, context: WorkContext(cancellation: flag))) {
            XCTAssertTrue($0 is Cancelled, "\($0)")
        }
    }

    func testBadForwardRequestsGiveClearErrors() throws {
        let model = try Fixtures.tinyModel()
        let ids = Fixtures.reference[0].ids
        func expect(_ fragment: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body()) { XCTAssertTrue("\($0)".contains(fragment), "'\($0)' lacks '\(fragment)'") }
        }
        expect("expected batch 2 × seqLen 22") { _ = try model.forward(tokens: ids, batch: 2, seqLen: 22) }
        expect("token id 50257 at position 1") { _ = try model.forward(tokens: [1, 50257], batch: 1, seqLen: 2) }
        expect("exceeds the model's context of 64") { _ = try model.forward(tokens: [Int32](repeating: 1, count: 65), batch: 1, seqLen: 65) }
        expect("unknown hook 'blocks.0.mlp'") { _ = try model.forward(tokens: ids, batch: 1, seqLen: 22, captures: ["blocks.0.mlp"]) }
        expect("values are [3, 32], the hook's value is [22, 32]") {
            _ = try model.forward(tokens: ids, batch: 1, seqLen: 22, patches: ["blocks.0.hook_mlp_out": .values(Matrix(rows: 3, cols: 32))])
        }
        expect("sequence 1 has 3 tokens") { _ = try model.forward([[1, 2], [1, 2, 3]]) }
    }
}
