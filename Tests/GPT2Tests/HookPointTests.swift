import Foundation
import XCTest
@testable import GPT2
import Tensor

/// Every TransformerLens hook point against TransformerLens's own values on the tiny GPT-2, and patching sub-module
/// hooks against TransformerLens's patched runs (Fixtures/tlens_hooks.*, written by tools/tlens/write_hook_fixture.py).
final class HookPointTests: XCTestCase {
    static let fixture = Fixtures.repoRoot.appendingPathComponent("Tests/GPT2Tests/Fixtures")

    struct Meta { let texts: [[Int32]]; let hooks: [String]; let ce: [String: Double]; let patches: [(hook: String, ce: Double)] }
    static let meta: Meta = {
        let obj = try! JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent("tlens_hooks.json"))) as! [String: Any]
        return Meta(texts: (obj["texts"] as! [[NSNumber]]).map { $0.map { Int32($0.intValue) } },
                    hooks: obj["hooks"] as! [String],
                    ce: (obj["ce"] as! [String: NSNumber]).mapValues(\.doubleValue),
                    patches: (obj["patches"] as! [[String: Any]]).map { ($0["hook"] as! String, ($0["ce"] as! NSNumber).doubleValue) })
    }()
    static func reference() throws -> SafeTensorsFile {
        try SafeTensorsFile(path: fixture.appendingPathComponent("tlens_hooks.safetensors").path)
    }

    /// gpt2-tiny with the fixture's perturbed LayerNorm parameters and biases ("params.*"), so LN folding and the
    /// bias paths are exercised (the checkpoint itself has LN = 1, 0 and zero biases).
    static func model(processing: WeightProcessing = .none) throws -> GPT2Model {
        let base = try Fixtures.tinyModel()
        let ref = try reference()
        var w = base.weights
        func p(_ key: String) throws -> [Float] { try ref.floats("params.\(key)") }
        for l in w.blocks.indices {
            let h = "h.\(l)."
            w.blocks[l].ln1Weight = try p(h + "ln_1.weight"); w.blocks[l].ln1Bias = try p(h + "ln_1.bias")
            w.blocks[l].ln2Weight = try p(h + "ln_2.weight"); w.blocks[l].ln2Bias = try p(h + "ln_2.bias")
            w.blocks[l].attnQKVBias = try p(h + "attn.c_attn.bias"); w.blocks[l].attnProjBias = try p(h + "attn.c_proj.bias")
            w.blocks[l].mlpFCBias = try p(h + "mlp.c_fc.bias"); w.blocks[l].mlpProjBias = try p(h + "mlp.c_proj.bias")
        }
        w.lnFinalWeight = try p("ln_f.weight"); w.lnFinalBias = try p("ln_f.bias")
        if processing == .transformerLens { w = w.processedAsTransformerLens() }
        return try GPT2Model(config: base.config, weights: w, tokenizer: base.tokenizer, name: "gpt2-tiny-perturbed", processing: processing)
    }

    /// Largest difference, with −∞ required at exactly the same places (the causal mask of the scores).
    static func maxDiff(_ a: [Float], _ b: [Float], _ what: String) -> Float {
        XCTAssertEqual(a.count, b.count, what)
        var m: Float = 0
        for i in 0..<min(a.count, b.count) {
            if a[i].isInfinite || b[i].isInfinite { if a[i] != b[i] { return .infinity }; continue }
            m = max(m, abs(a[i] - b[i]))
        }
        return m
    }

    func testNamesParseAndPrintTheTransformerLensScheme() throws {
        let all = HookPoint.all(nLayer: 2)
        XCTAssertEqual(all.map(\.name), Self.meta.hooks, "the same hooks, in TransformerLens's order")
        for p in all { XCTAssertEqual(try HookPoint.parse(p.name, nLayer: 2), p) }
        XCTAssertEqual(try HookPoint.parse("attn.hook_z", layer: 5), .block(5, .z))
        XCTAssertEqual(try HookPoint.parse("mlp_out", layer: 1).name, "blocks.1.hook_mlp_out")
        XCTAssertEqual(try HookPoint.parse("blocks.3.ln2.hook_normalized").name, "blocks.3.ln2.hook_normalized")
        XCTAssertEqual(try HookPoint.parse("ln_final.hook_scale"), .lnFinalScale)
        XCTAssertThrowsError(try HookPoint.parse("blocks.0.attn.hook_zz")) { XCTAssertTrue("\($0)".contains("attn.hook_z")) }
        XCTAssertThrowsError(try HookPoint.parse("attn.hook_z")) { XCTAssertTrue("\($0)".contains("needs a layer")) }
        XCTAssertThrowsError(try HookPoint.parse("blocks.2.attn.hook_q", nLayer: 2)) { XCTAssertTrue("\($0)".contains("out of range")) }
        let config = GPT2Config(nLayer: 2, nHead: 4, nEmbd: 32, nPositions: 64)
        XCTAssertEqual(HookPoint.block(0, .z).width(config, seqLen: 10), 32)
        XCTAssertEqual(HookPoint.block(0, .result).width(config, seqLen: 10), 128)
        XCTAssertEqual(HookPoint.block(0, .pattern).width(config, seqLen: 10), 40)
        XCTAssertEqual(HookPoint.block(0, .ln1Scale).width(config, seqLen: 10), 1)
        XCTAssertEqual(HookPoint.block(0, .mlpPost).width(config, seqLen: 10), 128)
    }

    func testEveryHookMatchesTransformerLens() throws {
        let model = try Self.model()
        let ref = try Self.reference()
        for (n, ids) in Self.meta.texts.enumerated() {
            let all = HookPoint.all(nLayer: 2)
            let out = try model.forward(tokens: ids, batch: 1, seqLen: ids.count, captures: Set(all.map(\.name)))
            for p in all {
                let got = try XCTUnwrap(out.captures[p.name], p.name)
                XCTAssertEqual(got.shape, [ids.count, p.width(model.config, seqLen: ids.count)], p.name)
                XCTAssertLessThan(Self.maxDiff(got.data, try ref.floats("none.text\(n).\(p.name)"), p.name), 2e-5, "text \(n) \(p.name)")
            }
            let ce = try Losses.meanCrossEntropy(logits: try XCTUnwrap(out.logits), tokens: ids, batch: 1, seqLen: ids.count)
            XCTAssertEqual(Double(ce), Self.meta.ce["none.text\(n)"]!, accuracy: 1e-5)
        }
    }

    /// Each hook captured alone: the forward stops right after it, and the value is the same.
    func testEachHookAloneStopsEarlyWithTheSameValue() throws {
        let model = try Self.model()
        let ref = try Self.reference()
        let ids = Self.meta.texts[0]
        for p in HookPoint.all(nLayer: 2) {
            let out = try model.forward(tokens: ids, batch: 1, seqLen: ids.count, captures: [p.name], logits: false)
            XCTAssertEqual(Array(out.captures.keys), [p.name])
            XCTAssertNil(out.logits)
            XCTAssertLessThan(Self.maxDiff(try XCTUnwrap(out.captures[p.name]).data, try ref.floats("none.text0.\(p.name)"), p.name), 2e-5, p.name)
        }
    }

    /// The patches tools/tlens/write_hook_fixture.py applies, in nsae's row layout.
    static func patch(_ i: Int, T: Int) -> Patch {
        let H = 4, hs = 8, C = 32
        func each(_ f: @escaping (inout Matrix, Int, Int) -> Void) -> Patch {
            .transform { m in for r in 0..<m.rows { for c in 0..<m.cols { f(&m, r, c) } } }
        }
        switch i {
        case 0: return each { m, r, c in if c / hs == 1 { m[r, c] = 0 } }                      // z: zero head 1
        case 1: return each { m, r, c in let q = r % T, k = c % T; m[r, c] = k <= q ? 1 / Float(q + 1) : 0 }  // uniform pattern
        case 2: return each { m, r, c in if c % T == 0 { m[r, c] += 2 } }                     // scores +2 at key 0
        case 3, 7, 12: return each { m, r, c in m[r, c] *= 2 }
        case 4, 6, 8, 9: return .zeros()
        case 5: return each { m, r, c in m[r, c] += 0.5 }
        case 10: return each { m, r, c in if c / C == 2 { m[r, c] = 0 } }                      // result: zero head 2
        case 11: return each { m, r, c in m[r, c] *= 0.5 }
        default: _ = H; fatalError("no patch \(i)")
        }
    }

    func testPatchingSubModuleHooksChangesDownstreamValuesAsTransformerLens() throws {
        let model = try Self.model()
        let ref = try Self.reference()
        let ids = Self.meta.texts[0], T = ids.count
        let clean = try ref.floats("none.text0.blocks.1.hook_resid_post")
        XCTAssertEqual(Self.meta.patches.count, 13)
        for (i, p) in Self.meta.patches.enumerated() {
            let out = try model.forward(tokens: ids, batch: 1, seqLen: T, captures: ["blocks.1.hook_resid_post"],
                                        patches: [p.hook: Self.patch(i, T: T)])
            let resid = try XCTUnwrap(out.captures["blocks.1.hook_resid_post"]).data
            let expected = try ref.floats("patch\(i).blocks.1.hook_resid_post")
            XCTAssertLessThan(Self.maxDiff(resid, expected, p.hook), 2e-5, "patch of \(p.hook)")
            if p.hook != "ln_final.hook_scale" {
                XCTAssertGreaterThan(Self.maxDiff(clean, expected, p.hook), 1e-3, "the patch of \(p.hook) changes the residual")
            }
            let ce = try Losses.meanCrossEntropy(logits: try XCTUnwrap(out.logits), tokens: ids, batch: 1, seqLen: T)
            XCTAssertEqual(Double(ce), p.ce, accuracy: 1e-5, "CE after patching \(p.hook)")
        }
    }

    /// Resuming from a residual hook, any later hook can be captured and patched, as in a full forward.
    func testResumeReachesSubModuleHooks() throws {
        let model = try Self.model()
        let ref = try Self.reference()
        let ids = Self.meta.texts[0], T = ids.count
        let mid = Matrix(rows: T, cols: 32, data: try ref.floats("none.text0.blocks.0.hook_resid_mid"))
        let out = try model.resume(from: "blocks.0.hook_resid_mid", value: mid, tokens: ids, batch: 1, seqLen: T,
                                   captures: ["blocks.0.mlp.hook_post", "blocks.1.attn.hook_pattern"], logits: false)
        for name in ["blocks.0.mlp.hook_post", "blocks.1.attn.hook_pattern"] {
            XCTAssertLessThan(Self.maxDiff(try XCTUnwrap(out.captures[name]).data, try ref.floats("none.text0.\(name)"), name), 2e-5, name)
        }
        let patched = try model.resume(from: "blocks.0.hook_resid_mid", value: mid, tokens: ids, batch: 1, seqLen: T,
                                       captures: ["blocks.1.hook_resid_post"], patches: ["blocks.1.mlp.hook_post": .zeros()])
        XCTAssertLessThan(Self.maxDiff(try XCTUnwrap(patched.captures["blocks.1.hook_resid_post"]).data,
                                       try ref.floats("patch4.blocks.1.hook_resid_post"), "resume"), 2e-5)
        XCTAssertThrowsError(try model.resume(from: "blocks.0.hook_resid_mid", value: mid, tokens: ids, batch: 1, seqLen: T,
                                              captures: ["blocks.0.attn.hook_z"])) { XCTAssertTrue("\($0)".contains("before the resume point")) }
    }

    /// `processing: .transformerLens` against TransformerLens's `from_pretrained` defaults (fold_ln,
    /// center_writing_weights, center_unembed, fold_value_biases): every hook, the logits, the same CE.
    func testTransformerLensProcessingMatchesItsProcessedModel() throws {
        let model = try Self.model(processing: .transformerLens)
        XCTAssertEqual(model.processing, .transformerLens)
        let ref = try Self.reference()
        let ids = Self.meta.texts[0], T = ids.count
        let all = HookPoint.all(nLayer: 2)
        let out = try model.forward(tokens: ids, batch: 1, seqLen: T, captures: Set(all.map(\.name)))
        let unprocessed = try Self.model().forward(tokens: ids, batch: 1, seqLen: T, captures: ["blocks.0.hook_resid_post"])
        for p in all {
            let got = try XCTUnwrap(out.captures[p.name], p.name)
            XCTAssertLessThan(Self.maxDiff(got.data, try ref.floats("tl.text0.\(p.name)"), p.name), 5e-5, "processed \(p.name)")
        }
        // The processing matters: the residual is centred per token (it differs from Hugging Face's numerics).
        let resid = try XCTUnwrap(out.captures["blocks.0.hook_resid_post"])
        XCTAssertGreaterThan(Self.maxDiff(resid.data, try XCTUnwrap(unprocessed.captures["blocks.0.hook_resid_post"]).data, "resid"), 1e-3)
        for r in 0..<T { XCTAssertEqual(resid.row(r).reduce(0, +) / 32, 0, accuracy: 1e-5) }
        let logits = try XCTUnwrap(out.logits)
        let head = (0..<T).flatMap { r in Array(logits.row(r)[0..<512]) }
        XCTAssertLessThan(Self.maxDiff(head, try ref.floats("tl.text0.logits_head"), "logits"), 1e-4)
        let ce = try Losses.meanCrossEntropy(logits: logits, tokens: ids, batch: 1, seqLen: T)
        XCTAssertEqual(Double(ce), Self.meta.ce["tl.text0"]!, accuracy: 1e-5)
        XCTAssertEqual(try GPT2Model.load(path: Fixtures.tiny, processing: .transformerLens).processing, .transformerLens)
        XCTAssertThrowsError(try model.writeLLMC(to: NSTemporaryDirectory() + "/processed.bin")) {
            XCTAssertTrue("\($0)".contains("processing=none"), "\($0)")
        }
        // gpt2-small-res-jb's cfg: {center_writing_weights: true}, loaded by SAELens 6 with from_pretrained_no_processing.
        let resJB = ["center_writing_weights": true]
        XCTAssertEqual(WeightProcessing.none.mismatches(saeKwargs: resJB, hook: .block(8, .residPre)), ["center_writing_weights"])
        XCTAssertEqual(WeightProcessing.transformerLens.mismatches(saeKwargs: resJB, hook: .block(8, .residPre)), [])
        XCTAssertEqual(WeightProcessing.transformerLens.mismatches(saeKwargs: resJB, hook: .block(8, .ln2Normalized)), ["fold_ln"])
        XCTAssertEqual(WeightProcessing.none.mismatches(saeKwargs: [:], hook: nil), [])
        XCTAssertEqual(WeightProcessing.transformerLens.mismatches(saeKwargs: [:], hook: .block(0, .z)), ["fold_value_biases"])
    }
}
