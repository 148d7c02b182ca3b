import Foundation
import Synchronization
import Tensor
import XCTest
import REPL
@testable import Workbench

/// Runs the `.nsae` scripts of Tests/scripts in `--json` mode and checks the values they print.
final class ScriptTests: XCTestCase {
    struct Output {
        var status: Int32
        var objects: [[String: Any]]
        /// The object of the statement on `line` (its result, not a stream or display object).
        func result(line: Int, file: StaticString = #filePath, testLine: UInt = #line) -> [String: Any] {
            let found = objects.first { ($0["line"] as? Int) == line && $0["type"] as? String != "stream" && $0["type"] as? String != "display" }
            XCTAssertNotNil(found, "no result object for line \(line)", file: file, line: testLine)
            return found ?? [:]
        }
        func table(line: Int) -> (columns: [String], rows: [[Any]]) {
            let value = result(line: line)["value"] as? [String: Any] ?? [:]
            return (value["columns"] as? [String] ?? [], value["rows"] as? [[Any]] ?? [])
        }
        /// A table column by name, as doubles.
        func numbers(line: Int, column: String) -> [Double] {
            let t = table(line: line)
            guard let index = t.columns.firstIndex(of: column) else { XCTFail("line \(line) has no column \(column): \(t.columns)"); return [] }
            return t.rows.map { ($0[index] as? NSNumber)?.doubleValue ?? .nan }
        }
    }

    static func run(script name: String, tmp: URL, session: Session = Session()) throws -> Output {
        let path = Fixtures.scripts.appendingPathComponent(name)
        let source = try String(contentsOf: path, encoding: .utf8)
            .replacingOccurrences(of: "{data}", with: Fixtures.data.path)
            .replacingOccurrences(of: "{tmp}", with: tmp.path)
        let collected = Mutex<String>("")
        let runner = ScriptRunner(session: session, json: true, showProgress: false, writeOut: { text in collected.withLock { $0 += text } })
        let status = runner.run(source, cancellation: CancellationFlag())
        let lines = collected.withLock { $0 }.split(separator: "\n", omittingEmptySubsequences: false)
        // `--json` stdout is JSON only, one object per line, each line ending in a newline (docs/commands.md).
        guard lines.last == "" else { throw ScriptOutputError("stdout does not end with a newline: \(lines.last ?? "")") }
        let objects = try lines.dropLast().enumerated().map { index, line -> [String: Any] in
            let parsed = try? JSONSerialization.jsonObject(with: Data(line.utf8))
            guard let object = parsed as? [String: Any] else {
                throw ScriptOutputError("--json stdout line \(index + 1) is not a JSON object: \(line.prefix(200))")
            }
            return object
        }
        return Output(status: status, objects: objects)
    }

    struct ScriptOutputError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    func testLanguageScriptJSONShapes() throws {
        let tmp = Fixtures.temporaryDirectory("lang")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = try Self.run(script: "language.nsae", tmp: tmp)
        XCTAssertEqual(out.status, 0)
        let echo = out.objects[0]
        XCTAssertEqual(echo["line"] as? Int, 2)
        XCTAssertEqual(echo["type"] as? String, "stream")
        XCTAssertEqual(echo["value"] as? String, "hello \"world\"")
        XCTAssertNil(echo["name"], "stream objects carry no name")
        XCTAssertEqual(out.objects.filter { ($0["line"] as? Int) == 2 }.count, 1, "echo's none result is not printed")
        XCTAssertEqual(out.result(line: 3)["value"] as? Int, 2000)
        XCTAssertTrue(out.result(line: 3)["name"] is NSNull)
        XCTAssertEqual(out.result(line: 4)["name"] as? String, "x")
        XCTAssertEqual(out.result(line: 4)["type"] as? String, "number")
        XCTAssertEqual(out.result(line: 4)["value"] as? Double, 0.001)
        XCTAssertEqual(out.result(line: 5)["type"] as? String, "list")
        XCTAssertEqual(out.result(line: 6)["value"] as? [Int], [0, 1, 2, 3])
        let shown = try XCTUnwrap(out.objects.first { ($0["line"] as? Int) == 7 })
        XCTAssertEqual(shown["type"] as? String, "display")
        XCTAssertEqual(shown["value"] as? Double, 0.001)
        XCTAssertEqual(out.result(line: 8)["type"] as? String, "none")
        let vars = out.table(line: 9)
        XCTAssertEqual(vars.columns, ["name", "type", "summary"])
        XCTAssertEqual(vars.rows.map { $0[0] as? String }, ["x", "layers"])
        XCTAssertEqual(vars.rows.map { $0[1] as? String }, ["number", "range"])
        let help = try XCTUnwrap(out.result(line: 10)["value"] as? String)
        XCTAssertTrue(help.contains("usage: sae KIND STORE"), help)
        XCTAssertTrue(help.contains("expansion=N") && help.contains("(default: 16)"), help)
    }

    func testErrorStopsTheScriptWithItsLine() throws {
        let tmp = Fixtures.temporaryDirectory("error")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = try Self.run(script: "error.nsae", tmp: tmp)
        XCTAssertEqual(out.status, 1)
        let last = try XCTUnwrap(out.objects.last)
        XCTAssertEqual(last["line"] as? Int, 3)
        let message = try XCTUnwrap(last["error"] as? String)
        XCTAssertTrue(message.contains("did you mean `train`?"), message)
        XCTAssertFalse(out.objects.contains { ($0["value"] as? String) == "never printed" })
        XCTAssertEqual(out.objects.compactMap { $0["value"] as? String }, ["before"])
    }

    func testGPT2ScriptMatchesReferenceOutputs() throws {
        let tmp = Fixtures.temporaryDirectory("gpt2")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.data.appendingPathComponent("gpt2-tiny/reference.json"))) as! [String: Any]
        let first = (reference["texts"] as! [[String: Any]])[0]
        let referenceIds = first["ids"] as! [Int]
        let referenceCE = first["ce_loss"] as! Double

        let out = try Self.run(script: "gpt2.nsae", tmp: tmp)
        XCTAssertEqual(out.status, 0, "\(out.objects.last ?? [:])")
        XCTAssertEqual(out.result(line: 2)["type"] as? String, "model")
        let tokens = out.table(line: 3)
        XCTAssertEqual(tokens.columns, ["position", "id", "token"])
        XCTAssertEqual(tokens.rows.map { $0[1] as? Int }, referenceIds.prefix(4).map { $0 })
        XCTAssertEqual(tokens.rows.map { $0[2] as? String }, ["The", " quick", " brown", " fox"])

        let clean = out.result(line: 4)
        XCTAssertEqual(clean["type"] as? String, "run")
        let value = try XCTUnwrap(clean["value"] as? [String: Any])
        XCTAssertEqual(value["tokens"] as? [Int], referenceIds)
        XCTAssertEqual(try XCTUnwrap(value["ce_loss"] as? Double), referenceCE, accuracy: 1e-4)
        let top = try XCTUnwrap(value["top"] as? [[Int]])
        XCTAssertEqual(top.count, referenceIds.count)
        XCTAssertTrue(top.allSatisfy { $0.count == 3 })

        let withBOS = try XCTUnwrap(out.result(line: 5)["value"] as? [String: Any])
        XCTAssertEqual((withBOS["tokens"] as? [Int])?.first, 50256, "bos=true prepends 50256")
        XCTAssertEqual((withBOS["tokens"] as? [Int])?.count, 3)
    }

    func testSyntheticSAELoop() throws {
        let tmp = Fixtures.temporaryDirectory("synth")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = try Self.run(script: "synthetic.nsae", tmp: tmp)
        XCTAssertEqual(out.status, 0, "\(out.objects.last ?? [:])")

        XCTAssertEqual(out.result(line: 2)["type"] as? String, "store")
        // Layers are the same tokens scaled by 1, 4, 16: counts equal, mean norms in exact ratio.
        XCTAssertEqual(out.numbers(line: 3, column: "count"), [3000, 3000, 3000])
        let means = out.numbers(line: 3, column: "mean")
        XCTAssertEqual(means[1] / means[0], 4, accuracy: 1e-4)
        XCTAssertEqual(means[2] / means[0], 16, accuracy: 1e-4)
        XCTAssertTrue(out.objects.contains { ($0["line"] as? Int) == 3 && $0["type"] as? String == "display" }, "stats shows a figure")

        let saeValue = try XCTUnwrap(out.result(line: 5)["value"] as? [String: Any])
        XCTAssertEqual(saeValue["architecture"] as? String, "nsae")
        XCTAssertEqual((saeValue["layers"] as? [[String: Any]])?.map { $0["d_sae"] as? Int }, [32, 32, 32])

        let log = out.table(line: 6)
        XCTAssertEqual(log.columns, ["step", "layer", "loss", "mse_term", "l1_term", "aux_term", "l0", "l1", "dead_fraction", "lr"])
        XCTAssertEqual(Set(out.numbers(line: 6, column: "step")), [4, 8, 12])
        XCTAssertEqual(Set(out.numbers(line: 7, column: "step")), [10], "tokens=1280 at batch 128 is 10 steps")

        XCTAssertEqual(out.table(line: 8).columns, ["layer", "l0", "l1", "mse", "explained_variance", "suppression", "dead_fraction", "alive"])
        // One eval row per layer: checked first, so an empty table cannot pass the loops below.
        let l0s = out.numbers(line: 8, column: "l0"), evs = out.numbers(line: 8, column: "explained_variance")
        XCTAssertEqual(l0s.count, 3)
        XCTAssertEqual(evs.count, 3)
        for l0 in l0s { XCTAssertTrue(l0 > 0 && l0 <= 32, "l0 \(l0)") }
        for ev in evs { XCTAssertTrue(ev.isFinite && ev <= 1, "ev \(ev)") }

        let mmcs = out.numbers(line: 9, column: "mmcs")
        XCTAssertEqual(mmcs.count, 3)
        for m in mmcs { XCTAssertTrue(m > 0 && m <= 1.0001, "mmcs \(m)") }

        let features = out.numbers(line: 10, column: "norm")
        XCTAssertEqual(features.count, 5)
        XCTAssertEqual(features, features.sorted(by: >), "sorted by norm, descending")
        let densities = out.numbers(line: 10, column: "density")
        XCTAssertEqual(densities.count, 5)
        for d in densities { XCTAssertTrue(d >= 0 && d <= 1, "density \(d)") }

        let norms = out.table(line: 11)
        XCTAssertEqual(norms.rows.count, 3)
        let medians = out.numbers(line: 11, column: "median"), mins = out.numbers(line: 11, column: "min"), maxs = out.numbers(line: 11, column: "max")
        XCTAssertEqual([medians.count, mins.count, maxs.count], [3, 3, 3])
        for i in 0..<min(3, medians.count, mins.count, maxs.count) { XCTAssertTrue(mins[i] <= medians[i] && medians[i] <= maxs[i]) }

        let cosine = out.table(line: 12)
        XCTAssertEqual(cosine.rows.map { $0[1] as? String }, ["pairs", "pillars"])
        XCTAssertEqual(out.numbers(line: 12, column: "pairs"), [200, 28], "8 pillars make 28 pairs")

        let fit = out.table(line: 13)
        XCTAssertEqual(fit.columns, ["sae", "slope", "intercept", "r", "p", "layers"])
        XCTAssertEqual(out.numbers(line: 13, column: "layers"), [3])
        let r = out.numbers(line: 13, column: "r")[0]
        XCTAssertTrue(r >= -1 && r <= 1)

        let top = out.table(line: 14)
        // An NSAE's rows are ranked by the pre-activation (its tanh codes saturate), shown beside the activation.
        XCTAssertEqual(top.columns, ["rank", "activation", "pre_activation", "position", "token", "context"])
        let activations = out.numbers(line: 14, column: "activation")
        XCTAssertEqual(activations.count, 4)
        XCTAssertEqual(activations, activations.sorted(by: >))
        let pre = out.numbers(line: 14, column: "pre_activation")
        XCTAssertEqual(pre, pre.sorted(by: >))
        // The highlighted context carries each token's activation; the focus token's equals the row's activation.
        let context = try XCTUnwrap(top.rows[0][5] as? [String: Any])
        let focus = try XCTUnwrap(context["focus"] as? Int)
        let contextActivations = try XCTUnwrap(context["activations"] as? [Double])
        XCTAssertEqual(contextActivations[focus], activations[0], accuracy: 1e-5)

        XCTAssertEqual(out.table(line: 15).rows.count, 2, "feature card returns its top contexts")
        XCTAssertGreaterThanOrEqual(out.objects.filter { ($0["line"] as? Int) == 15 && $0["type"] as? String == "display" }.count, 2)

        let compare = out.table(line: 16)
        XCTAssertEqual(compare.rows.map { $0[0] as? String }, ["base", "base", "base", "norm", "norm", "norm"])

        // One SAELens folder per layer, each cfg.json with its hook_layer.
        let folders = try FileManager.default.contentsOfDirectory(atPath: tmp.appendingPathComponent("saved").path).sorted()
        XCTAssertEqual(folders.count, 3, "\(folders)")
        let hookLayers = try folders.map { folder -> Int? in
            let cfg = tmp.appendingPathComponent("saved/\(folder)/cfg.json")
            return (try JSONSerialization.jsonObject(with: Data(contentsOf: cfg)) as? [String: Any])?["hook_layer"] as? Int
        }
        XCTAssertEqual(hookLayers, [0, 1, 2])
        // plot: a figure value with one series per layer, saved as SVG; the log saved as CSV with one row per (step, layer).
        let curve = try XCTUnwrap(out.result(line: 21)["value"] as? [String: Any])
        XCTAssertEqual(curve["kind"] as? String, "line")
        XCTAssertEqual((curve["series"] as? [[String: Any]])?.map { $0["label"] as? String }, ["layer 0", "layer 1", "layer 2"])
        XCTAssertEqual((curve["series"] as? [[String: Any]])?.first?["x"] as? [Double], [1, 2, 3, 4])
        let svg = try String(contentsOf: tmp.appendingPathComponent("curve.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg ") && svg.contains("<polyline"))
        let csv = try String(contentsOf: tmp.appendingPathComponent("log.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "step,layer,loss,mse_term,l1_term,aux_term,l0,l1,dead_fraction,lr")
        XCTAssertEqual(csv.count, 1 + 4 * 3)

        // The saved and reloaded group evaluates to the same metrics (same tokens: the eval reader is seeded).
        let before = out.numbers(line: 8, column: "mse"), after = out.numbers(line: 19, column: "mse")
        XCTAssertEqual(before.count, 3)
        XCTAssertEqual(after.count, before.count, "zip would hide a missing layer")
        for (a, b) in zip(before, after) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(a))) }
    }

    /// Every registered architecture through train, compare, features, norms, cosine, fit, top, feature, save
    /// and load (Tests/scripts/kinds.nsae).
    func testEveryArchitectureThroughTheAnalysisVerbs() throws {
        let tmp = Fixtures.temporaryDirectory("kinds")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = try Self.run(script: "kinds.nsae", tmp: tmp)
        XCTAssertEqual(out.status, 1, "the last line is an error")
        for line in 8...12 { XCTAssertEqual(out.table(line: line).rows.count, 6, "train line \(line): 2 steps × 3 layers") }
        // TopK and BatchTopK train at L0 = k (BatchTopK on average over the batch).
        for l0 in out.numbers(line: 10, column: "l0") + out.numbers(line: 11, column: "l0") { XCTAssertEqual(l0, 3, accuracy: 1e-9) }
        let compare = out.table(line: 13)
        XCTAssertEqual(compare.rows.map { $0[1] as? String }, ["relu", "nsae", "topk", "batchtopk", "jumprelu"].flatMap { [$0, $0, $0] })
        let l0 = out.numbers(line: 13, column: "l0")
        for i in 6..<9 { XCTAssertEqual(l0[i], 3, accuracy: 1e-9, "topk evaluates at L0 = k") }
        for v in l0 { XCTAssertTrue(v >= 0 && v <= 32) }
        XCTAssertEqual(out.numbers(line: 14, column: "norm").count, 3)
        XCTAssertEqual(out.numbers(line: 15, column: "norm").count, 3)
        XCTAssertEqual(out.table(line: 16).rows.count, 3)
        XCTAssertEqual(out.numbers(line: 17, column: "pairs"), [50, 6])
        XCTAssertEqual(out.numbers(line: 18, column: "layers"), [3])
        XCTAssertEqual(out.numbers(line: 19, column: "activation").count, 2)
        XCTAssertEqual(out.table(line: 20).rows.count, 2)
        // The batchtopk group saved (as SAELens jumprelu folders) and reloaded evaluates the same.
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: tmp.appendingPathComponent("btk/synthetic.layer0/cfg.json"))) as? [String: Any]
        XCTAssertEqual(cfg?["architecture"] as? String, "jumprelu")
        let reloaded = out.numbers(line: 23, column: "mse"), original = out.numbers(line: 24, column: "mse")
        XCTAssertEqual(reloaded.count, 3)
        for (a, b) in zip(reloaded, original) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a))) }
        let error = try XCTUnwrap(out.objects.last)
        XCTAssertTrue("\(error)".contains("alpha= is not an option of topk"), "\(error)")
    }

    func testHarvestSpliceAndLogits() throws {
        let tmp = Fixtures.temporaryDirectory("harvest")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let documents = (0..<40).map { "Document \($0): the quick brown fox jumps over the lazy dog while sparse autoencoders watch." }
        try documents.joined(separator: "\n\n").write(to: tmp.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
        let out = try Self.run(script: "harvest.nsae", tmp: tmp)
        XCTAssertEqual(out.status, 0, "\(out.objects.last ?? [:])")
        let store = try XCTUnwrap(out.result(line: 4)["value"] as? [String: Any])
        XCTAssertEqual(store["tokens"] as? Int, 256)
        XCTAssertEqual((store["hooks"] as? [[String: Any]])?.map { $0["name"] as? String }, ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"])
        // Non-BOS rows: 8 windows of 32 tokens minus their 8 leading BOS and the 50256 separators between the
        // documents that fall inside them (design §5: a separator right after a window's BOS is dropped), with the
        // documents' lengths counted here from `tokenize`.
        let session = Session()
        session.mustRun("gpt2 = load gpt2 \"\(Fixtures.data.path)/gpt2-tiny\"")
        var filled = 0, windows = 0, separators = 0
        documents: for document in documents {
            let json = try XCTUnwrap(session.mustRun("tokenize gpt2 \"\(document)\"")?.data["application/json"])
            var remaining = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["rows"] as? [Any]).count
            if filled > 0 { filled += 1; separators += 1 }
            while remaining > 0 || filled == 32 {
                if filled == 32 { windows += 1; filled = 0; if windows == 8 { break documents } ; continue }
                if filled == 0 { filled = 1 }
                let take = min(32 - filled, remaining)
                filled += take; remaining -= take
            }
        }
        XCTAssertEqual(windows, 8)
        XCTAssertEqual(out.numbers(line: 5, column: "count"), [Double(248 - separators), Double(248 - separators)])

        let splice = out.table(line: 8)
        XCTAssertEqual(splice.columns, ["layer", "hook", "ce_clean", "ce_zero", "ce_recon", "score", "kl_zero", "kl_recon", "kl_score"])
        let clean = out.numbers(line: 8, column: "ce_clean"), zero = out.numbers(line: 8, column: "ce_zero")
        let recon = out.numbers(line: 8, column: "ce_recon"), score = out.numbers(line: 8, column: "score")
        XCTAssertEqual([clean.count, zero.count, recon.count, score.count], [2, 2, 2, 2], "one splice row per layer")
        for i in 0..<min(2, clean.count, zero.count, recon.count, score.count) {
            XCTAssertEqual(clean[i], clean[0], accuracy: 1e-6, "the clean CE is shared by all layers")
            XCTAssertEqual(score[i], (zero[i] - recon[i]) / (zero[i] - clean[i]), accuracy: 1e-6)
        }
        XCTAssertEqual(clean[0], log(50257.0), accuracy: 1.5, "a random tiny GPT-2 predicts near uniformly")

        let lens = out.table(line: 9)
        XCTAssertEqual(lens.rows.count, 3)
        let promoted = out.numbers(line: 9, column: "logit"), suppressed = out.numbers(line: 9, column: "logit ")
        XCTAssertEqual(promoted.count, 3)
        XCTAssertEqual(suppressed.count, 3)
        XCTAssertEqual(promoted, promoted.sorted(by: >))
        XCTAssertTrue(try XCTUnwrap(promoted.last) >= XCTUnwrap(suppressed.first))

        let top = out.table(line: 10)
        XCTAssertEqual(top.rows.count, 2)
        let context = try XCTUnwrap(top.rows[0][4] as? [String: Any])
        let tokens = try XCTUnwrap(context["tokens"] as? [String])
        XCTAssertTrue(tokens.joined().contains(where: \.isLetter), "context shows token text: \(tokens)")
    }
}

/// Ctrl-C in the middle of `train`: the front end's flag is set while the trainer runs (here by the progress sink).
final class InterruptTests: XCTestCase {
    func testInterruptedTrainingKeepsTheGroupUsableAndResumable() throws {
        let tmp = Fixtures.temporaryDirectory("interrupt")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = Session()
        session.mustRun("toy = synth d=8 features=16 active=2 norms=[1,2] tokens=1k out=\"\(tmp.path)/toy\"\ns = sae relu toy expansion=2")
        let flag = CancellationFlag()
        let sink = RecordingSink(cancelAfter: (3, flag))
        guard case .interrupted(let message) = session.execute("train s toy steps=100000 batch=32", sink: sink, cancellation: flag) else {
            return XCTFail("expected the train to be interrupted")
        }
        XCTAssertTrue(message.contains("interrupted"), message)
        let stepsJSON = try XCTUnwrap(session.mustRun("s")?.data["application/json"])
        let steps = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(stepsJSON.utf8)) as? [String: Any])?["steps"] as? Int)
        XCTAssertGreaterThan(steps, 0, "the steps taken before Ctrl-C are kept")
        XCTAssertLessThan(steps, 100_000)
        XCTAssertTrue(message.contains("train kept the \(steps) of 100000 steps it finished"), message)
        // The session and the group still work; training again continues from the steps already taken.
        XCTAssertNotNil(session.mustRun("eval s toy tokens=200"))
        session.mustRun("train s toy steps=2 batch=32 log_every=1")
        let after = try XCTUnwrap(session.mustRun("s")?.data["application/json"])
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(after.utf8)) as? [String: Any])?["steps"] as? Int, steps + 2)
    }
}
