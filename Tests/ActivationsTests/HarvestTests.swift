import Foundation
import XCTest
import Tensor
import GPT2
@testable import Activations

final class HarvestTests: XCTestCase {
    private static let model = Result { try GPT2Model.load(path: Fixtures.tinyModel) }

    func testHarvestedActivationsEqualTheReferenceHookValues() throws {
        let model = try Self.model.get()
        let reference = try SafeTensorsFile(path: Fixtures.reference)
        for kind in [HookPoint.Kind.mlpOut, .residPre, .attnOut, .residPost] {
            for n in 0..<3 {
                let ids = try reference.int32s("text\(n).ids")
                var options = Harvester.Options(layers: [0, 1])
                options.kind = kind
                options.contextLength = ids.count
                let store = try Harvester.harvest(model: model, windows: [TokenWindow(tokens: ids)],
                                                  to: temporaryFolder(self), options: options)
                XCTAssertEqual(try store.tokenIds(0..<ids.count), ids)
                XCTAssertEqual(store.hooks.count, 2, "one hook per harvested layer, each compared below")
                for (h, hook) in store.hooks.enumerated() {
                    let want = try reference.matrix("text\(n).\(hook.name)")
                    let got = try store.matrix(hook: h, rows: 0..<ids.count)
                    XCTAssertEqual(got.rows, want.rows)
                    let err = zip(got.data, want.data).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(err, 1e-4, "text\(n) \(hook.name)")
                }
            }
        }
    }

    /// Sub-module and model-level hooks are stored at their own width, equal to TransformerLens's values
    /// (Tests/GPT2Tests/Fixtures/tlens_hooks.*, tools/tlens/write_hook_fixture.py).
    func testHarvestOfAnyHookStoresItsOwnWidthAsTransformerLens() throws {
        let fixture = Fixtures.repoRoot.appendingPathComponent("Tests/GPT2Tests/Fixtures")
        let ref = try SafeTensorsFile(path: fixture.appendingPathComponent("tlens_hooks.safetensors").path)
        // The fixture's perturbed LayerNorm parameters and biases (tools/tlens/write_hook_fixture.py).
        let base = try Self.model.get()
        var w = base.weights
        for l in w.blocks.indices {
            let h = "params.h.\(l)."
            w.blocks[l].ln1Weight = try ref.floats(h + "ln_1.weight"); w.blocks[l].ln1Bias = try ref.floats(h + "ln_1.bias")
            w.blocks[l].ln2Weight = try ref.floats(h + "ln_2.weight"); w.blocks[l].ln2Bias = try ref.floats(h + "ln_2.bias")
            w.blocks[l].attnQKVBias = try ref.floats(h + "attn.c_attn.bias"); w.blocks[l].attnProjBias = try ref.floats(h + "attn.c_proj.bias")
            w.blocks[l].mlpFCBias = try ref.floats(h + "mlp.c_fc.bias"); w.blocks[l].mlpProjBias = try ref.floats(h + "mlp.c_proj.bias")
        }
        w.lnFinalWeight = try ref.floats("params.ln_f.weight"); w.lnFinalBias = try ref.floats("params.ln_f.bias")
        let model = try GPT2Model(config: base.config, weights: w, name: "perturbed")
        let ids = try SafeTensorsFile(path: Fixtures.reference).int32s("text0.ids")
        let cases: [(HookPoint.Kind?, HookPoint?, Int)] = [(.z, nil, 32), (.mlpPost, nil, 128), (.result, nil, 128), (.ln2Scale, nil, 1),
                                                          (.pattern, nil, 4 * ids.count), (nil, .lnFinal, 32), (nil, .posEmbed, 32)]
        for (kind, modelHook, width) in cases {
            var options = Harvester.Options(layers: [0, 1])
            if let kind { options.kind = kind }
            options.modelHook = modelHook
            options.contextLength = ids.count
            let store = try Harvester.harvest(model: model, windows: [TokenWindow(tokens: ids)], to: temporaryFolder(self), options: options)
            XCTAssertEqual(store.hooks.map(\.d), Array(repeating: width, count: modelHook == nil ? 2 : 1))
            for (h, hook) in store.hooks.enumerated() {
                let got = try store.matrix(hook: h, rows: 0..<ids.count)
                let want = try ref.floats("none.text0.\(hook.name)")
                XCTAssertEqual(got.data.count, want.count, hook.name)
                XCTAssertLessThan(zip(got.data, want).map { abs($0 - $1) }.max()!, 2e-5, hook.name)
            }
        }
        var scores = Harvester.Options(layers: [0])
        scores.kind = .attnScores
        scores.contextLength = ids.count
        XCTAssertThrowsMessage(try Harvester.harvest(model: model, windows: [TokenWindow(tokens: ids)], to: temporaryFolder(self), options: scores),
                               contains: ["attn.hook_attn_scores", "−∞"])
    }

    func testHarvestOfACorpusMatchesAForwardOverItsWindows() throws {
        let model = try Self.model.get()
        let corpus = temporaryFolder(self, "corpus.txt")
        try (try Fixtures.referenceTexts()).map(\.text).joined(separator: "\n\n").write(toFile: corpus, atomically: true, encoding: .utf8)
        var options = Harvester.Options(layers: [1])
        options.contextLength = 16
        options.batchSize = 2
        options.dtype = .f16
        options.shardRows = 32
        let store = try Harvester.harvest(model: model, corpus: try Corpus(path: corpus), to: temporaryFolder(self), options: options)
        let tokenizer = try XCTUnwrap(model.tokenizer)
        var windows = try ContextWindows(corpus: try Corpus(path: corpus), contextLength: 16, tokenize: { tokenizer.encode($0) })
        let all = try windows.all()
        XCTAssertEqual(store.tokenCount, all.count * 16)
        XCTAssertEqual(store.manifest.info["hook_kind"], "hook_mlp_out")
        XCTAssertEqual(store.hookNames, ["blocks.1.hook_mlp_out"])
        let forward = try model.forward(all.map(\.tokens), captures: ["blocks.1.hook_mlp_out"], logits: false)
        let want = forward.captures["blocks.1.hook_mlp_out"]!
        let got = try store.matrix(hook: 0, rows: 0..<store.tokenCount)
        // Batches of 2 windows round differently from one forward of all windows; allow one f16 step on top.
        let worst = zip(got.data, want.data).map { abs($0 - $1) / (abs($1) * 0x1p-10 + 1e-6) }.max()!
        XCTAssertLessThanOrEqual(worst, 1.01)
        XCTAssertEqual(try store.documentIndex(0..<store.tokenCount), all.flatMap(\.documentIndex))
        XCTAssertEqual(store.normStats[0].count, all.flatMap(\.tokens).filter { $0 != endOfTextToken }.count)
    }

    func testCancelledHarvestLeavesAnIncompleteStoreOfFinishedBatches() throws {
        let model = try Self.model.get()
        let texts = (0..<40).map { "Document number \($0) talks about sparse features and residual streams." }
        let tokenizer = try XCTUnwrap(model.tokenizer)
        var windows = try ContextWindows(texts: texts, contextLength: 8, tokenize: { tokenizer.encode($0) })
        let flag = CancellationFlag()
        final class CancelAfter: ProgressSink, @unchecked Sendable {
            let flag: CancellationFlag; let rows: Int
            init(_ flag: CancellationFlag, rows: Int) { self.flag = flag; self.rows = rows }
            func report(_ update: ProgressUpdate) { if update.done >= rows { flag.cancel() } }
        }
        var options = Harvester.Options(layers: [0, 1])
        options.contextLength = 8
        options.batchSize = 2
        options.shardRows = 24
        let folder = temporaryFolder(self)
        XCTAssertThrowsError(try Harvester.harvest(model: model, windows: &windows, to: folder, options: options,
                                                   context: WorkContext(progress: CancelAfter(flag, rows: 48), cancellation: flag))) {
            XCTAssertTrue($0 is Cancelled)
        }
        // Refused by default, with what it holds and what to do; read with allowIncomplete.
        XCTAssertThrowsMessage(try ActivationStore(path: folder), contains: ["incomplete", "after 48 tokens", "incomplete=true"])
        let store = try ActivationStore(path: folder, allowIncomplete: true)
        XCTAssertFalse(store.manifest.complete)
        XCTAssertEqual(store.tokenCount, 48)   // three batches of 2 windows × 8 tokens, then the flag was seen
        XCTAssertEqual(store.shardCount, 2)
        var scanned = 0
        try store.scan { scanned += $0.rowCount }
        XCTAssertEqual(scanned, 48)
    }

    func testHarvestRejectsBadLayersAndLengths() throws {
        let model = try Self.model.get()
        var options = Harvester.Options(layers: [2])
        options.contextLength = 4
        XCTAssertThrowsMessage(try Harvester.harvest(model: model, windows: [TokenWindow(tokens: [1, 2, 3, 4])], to: temporaryFolder(self), options: options),
                               contains: ["layer 2 is out of range", "2 layers"])
        options.layers = [0]
        XCTAssertThrowsMessage(try Harvester.harvest(model: model, windows: [TokenWindow(tokens: [1, 2, 3])], to: temporaryFolder(self), options: options),
                               contains: ["window 0 has 3 tokens", "context length is 4"])
    }
}
