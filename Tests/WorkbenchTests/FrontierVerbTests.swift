import Foundation
import XCTest
@testable import Workbench

/// `frontier`, `match` and `fit` over sweeps, checked against the verbs that measure one group (`eval`, `splice`,
/// `fit`) and against themselves (a sweep matched with itself).
final class FrontierVerbTests: XCTestCase {
    private func table(_ session: Session, _ code: String, file: StaticString = #filePath, line: UInt = #line) throws -> (columns: [String], rows: [[Any]]) {
        let json = try XCTUnwrap(session.mustRun(code, file: file, line: line)?.data["application/json"], file: file, line: line)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], file: file, line: line)
        return (try XCTUnwrap(object["columns"] as? [String]), try XCTUnwrap(object["rows"] as? [[Any]]))
    }

    private func column(_ t: (columns: [String], rows: [[Any]]), _ name: String) -> [Any] {
        guard let i = t.columns.firstIndex(of: name) else { XCTFail("no column \(name) in \(t.columns)"); return [] }
        return t.rows.map { $0[i] }
    }

    private func numbers(_ t: (columns: [String], rows: [[Any]]), _ name: String) -> [Double] {
        column(t, name).map { ($0 as? Double) ?? ($0 as? Int).map(Double.init) ?? .nan }
    }

    /// A synthetic store (3 layers of different norms) and two trained sweeps of 3 grid values.
    private func trainedSweeps(_ tmp: URL) -> Session {
        let session = Session()
        session.mustRun("""
        toy = synth d=16 features=64 active=3 layers=3 norms=[1,4,16] tokens=6k seed=3 out="\(tmp.path)/toy"
        r = sweep relu toy expansion=4 alpha=[0.01, 0.3, 3] seed=1
        n = sweep nsae toy expansion=4 alpha=[0.003, 0.03, 0.3] seed=1
        train r toy steps=60 batch=256 log_every=60
        train n toy steps=60 batch=256 log_every=60
        """)
        return session
    }

    func testMatchOfASweepWithItselfGivesEqualMetricsAtEveryGridPoint() throws {
        let tmp = Fixtures.temporaryDirectory("match-self")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = trainedSweeps(tmp)
        for metric in ["explained_variance", "mse"] {
            let m = try table(session, "match r r metric=\(metric)")
            XCTAssertEqual(m.columns, ["layer", "row", "at", "l0_a", "l0_b", "l0_ratio", "metric_a", "metric_b", "b_minus_a"])
            let kinds = column(m, "row") as? [String]
            // Every grid point's L0 is in the common range of a curve with itself: 3 matched rows and the nearest pair per layer.
            XCTAssertEqual(kinds, Array(repeating: ["matched", "matched", "matched", "nearest"], count: 3).flatMap { $0 })
            XCTAssertEqual(numbers(m, "metric_a"), numbers(m, "metric_b"))
            XCTAssertEqual(numbers(m, "l0_a"), numbers(m, "l0_b"))
            XCTAssertEqual(Set(numbers(m, "b_minus_a")), [0])
            XCTAssertEqual(Set(numbers(m, "l0_ratio")), [1])
            // The matched L0s of a layer are its three grid points' L0s, increasing.
            let l0 = numbers(m, "l0_a")
            for layer in 0..<3 { XCTAssertEqual(Array(l0[(4 * layer)..<(4 * layer + 3)]), l0[(4 * layer)..<(4 * layer + 3)].sorted()) }
        }
    }

    /// The frontier's shared scan gives `eval`'s numbers for each group of the sweep, and `match` interpolates them.
    func testFrontierEqualsEvalAndMatchInterpolatesLogLinearly() throws {
        let tmp = Fixtures.temporaryDirectory("frontier-eval")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = trainedSweeps(tmp)
        let sink = RecordingSink()
        session.mustRun("f = frontier r n", sink: sink)
        let f = try table(session, "f")
        XCTAssertEqual(f.columns, ["sweep", "alpha", "layer", "l0", "explained_variance"])
        XCTAssertEqual(f.rows.count, 18)
        // One figure per layer, L0 on a log axis, one labelled curve per sweep.
        let figures = sink.displays.compactMap { $0.data["image/svg+xml"] }
        XCTAssertEqual(figures.count, 3)
        XCTAssertTrue(figures[0].contains("L0 (log scale)") && figures[0].contains(">r (alpha)<") && figures[0].contains(">0.003<"), figures[0])
        for (name, offset) in [("r", 0), ("n", 9)] {
            let e = try table(session, "eval \(name) toy")
            XCTAssertEqual(numbers(e, "alpha"), Array(numbers(f, "alpha")[offset..<(offset + 9)]))
            XCTAssertEqual(numbers(e, "l0"), Array(numbers(f, "l0")[offset..<(offset + 9)]))
            XCTAssertEqual(numbers(e, "explained_variance"), Array(numbers(f, "explained_variance")[offset..<(offset + 9)]))
        }
        // match r n at layer 1, recomputed here from the frontier's points.
        let m = try table(session, "match r n layer=1")
        func points(_ sweep: String) -> [(l0: Double, ev: Double)] {
            f.rows.filter { $0[0] as? String == sweep && ($0[2] as? Int) == 1 }
                .map { (($0[3] as? Double)!, ($0[4] as? Double)!) }.sorted { $0.l0 < $1.l0 }
        }
        func interpolate(_ p: [(l0: Double, ev: Double)], _ l0: Double) -> Double? {
            guard let lo = p.first?.l0, let hi = p.last?.l0, l0 >= lo, l0 <= hi else { return nil }
            if let exact = p.first(where: { $0.l0 == l0 }) { return exact.ev }
            let k = p.firstIndex { $0.l0 > l0 }!
            let t = log(l0 / p[k - 1].l0) / log(p[k].l0 / p[k - 1].l0)
            return p[k - 1].ev + t * (p[k].ev - p[k - 1].ev)
        }
        let r = points("r"), n = points("n")
        let expectedL0s = (r + n).map(\.l0).filter { interpolate(r, $0) != nil && interpolate(n, $0) != nil }.sorted()
        let matched = m.rows.filter { $0[1] as? String == "matched" }
        XCTAssertEqual(matched.map { $0[3] as? Double }, expectedL0s)
        for row in matched {
            let l0 = row[3] as! Double
            XCTAssertEqual(row[6] as! Double, interpolate(r, l0)!, accuracy: 1e-12)
            XCTAssertEqual(row[7] as! Double, interpolate(n, l0)!, accuracy: 1e-12)
        }
        let nearest = try XCTUnwrap(m.rows.last)
        XCTAssertEqual(nearest[1] as? String, "nearest")
        let best = r.flatMap { a in n.map { b in max(a.l0, b.l0) / min(a.l0, b.l0) } }.min()!
        XCTAssertEqual(nearest[5] as! Double, best, accuracy: 1e-12)
    }

    func testMatchSaysWhenTheL0RangesDoNotOverlap() throws {
        let tmp = Fixtures.temporaryDirectory("match-apart")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = Session()
        // TopK's L0 is k: two grids of k that cannot overlap.
        session.mustRun("""
        toy = synth d=16 features=64 active=3 layers=2 norms=[1,4] tokens=4k seed=3 out="\(tmp.path)/toy"
        few = sweep topk toy expansion=4 k=[2, 3]
        many = sweep topk toy expansion=4 k=[8, 12]
        train few toy steps=20 batch=256
        train many toy steps=20 batch=256
        """)
        let m = try table(session, "match few many")
        XCTAssertEqual(column(m, "row") as? [String], ["no_overlap", "nearest", "no_overlap", "nearest"])
        let note = try XCTUnwrap(m.rows[0][2] as? String)
        XCTAssertTrue(note.contains("do not overlap: few 2–3, many 8–12"), note)
        XCTAssertTrue(m.rows[0][6] is NSNull && m.rows[0][7] is NSNull, "no interpolated metric where there is no overlap")
        XCTAssertEqual(numbers(m, "l0_a")[1], 3)
        XCTAssertEqual(numbers(m, "l0_b")[1], 8)
        XCTAssertEqual(numbers(m, "l0_ratio")[1], 8.0 / 3, accuracy: 1e-12)
        XCTAssertTrue((m.rows[1][2] as? String)?.contains("few k=3 · many k=8") ?? false, "\(m.rows[1][2])")
    }

    /// frontier's CE and KL scores, from one splice of all the sweep's SAEs, equal `splice` of each group alone.
    func testFrontierCEScoresEqualPerGroupSplice() throws {
        let tmp = Fixtures.temporaryDirectory("frontier-ce")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let documents = (0..<40).map { "Document \($0): the quick brown fox jumps over the lazy dog while sparse autoencoders watch." }
        try documents.joined(separator: "\n\n").write(to: tmp.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
        let session = Session()
        // The sweep and the groups start from the same seeds and read the same batches, so they train alike.
        session.mustRun("""
        gpt2 = load gpt2 "\(Fixtures.data.path)/gpt2-tiny"
        web = load text "\(tmp.path)/corpus.txt"
        acts = harvest gpt2 web hook=mlp_out layers=0..1 tokens=256 context=32 out="\(tmp.path)/acts" batch=4
        s = sweep relu acts expansion=2 alpha=[1e-3, 1e-1] seed=1
        train s acts steps=6 batch=64
        g1 = sae relu acts expansion=2 alpha=1e-3 seed=1
        g2 = sae relu acts expansion=2 alpha=1e-1 seed=1
        train g1 acts steps=6 batch=64
        train g2 acts steps=6 batch=64
        """)
        let ce = try table(session, "frontier s metric=ce_score model=gpt2 corpus=web tokens=96 context=32")
        let kl = try table(session, "frontier s metric=kl_score model=gpt2 corpus=web tokens=96 context=32")
        XCTAssertEqual(ce.columns, ["sweep", "alpha", "layer", "l0", "ce_score"])
        XCTAssertEqual(numbers(ce, "alpha"), [0.001, 0.001, 0.1, 0.1])
        XCTAssertEqual(numbers(ce, "layer"), [0, 1, 0, 1])
        let frontierOfGroups = try table(session, "frontier g1 g2 metric=ce_score model=gpt2 corpus=web tokens=96 context=32")
        for (g, name) in ["g1", "g2"].enumerated() {
            let splice = try table(session, "splice \(name) gpt2 web tokens=96 context=32")
            for layer in 0..<2 {
                XCTAssertEqual(numbers(ce, "ce_score")[2 * g + layer], numbers(splice, "score")[layer], accuracy: 1e-9, "\(name) layer \(layer)")
                XCTAssertEqual(numbers(kl, "kl_score")[2 * g + layer], numbers(splice, "kl_score")[layer], accuracy: 1e-9, "\(name) layer \(layer)")
                XCTAssertEqual(numbers(frontierOfGroups, "ce_score")[2 * g + layer], numbers(splice, "score")[layer], accuracy: 1e-9)
            }
        }
        // The two grid values' SAEs differ, so the comparison above could tell them apart.
        XCTAssertNotEqual(numbers(ce, "ce_score")[0], numbers(ce, "ce_score")[2])
        // L0 comes from the codes spliced in: positive and at most d_sae (64).
        for l0 in numbers(ce, "l0") { XCTAssertTrue(l0 > 0 && l0 <= 64, "\(l0)") }
    }

    /// A splice already measured for an SAE at its current step (by frontier, match or splice) is reused; training
    /// the SAE further makes it measure again.
    func testSpliceResultsAreReusedOnlyForTheSameSAEAtTheSameStep() throws {
        let tmp = Fixtures.temporaryDirectory("splice-cache")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let documents = (0..<40).map { "Document \($0): the quick brown fox jumps over the lazy dog while sparse autoencoders watch." }
        try documents.joined(separator: "\n\n").write(to: tmp.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
        let session = Session()
        session.mustRun("""
        gpt2 = load gpt2 "\(Fixtures.data.path)/gpt2-tiny"
        web = load text "\(tmp.path)/corpus.txt"
        acts = harvest gpt2 web hook=mlp_out layers=0..1 tokens=256 context=32 out="\(tmp.path)/acts" batch=4
        s = sweep relu acts expansion=2 alpha=[1e-3, 1e-1] seed=1
        train s acts steps=4 batch=64
        g = pick s alpha=0.1
        """)
        func splices(_ code: String) throws -> (table: (columns: [String], rows: [[Any]]), measured: Bool) {
            let sink = RecordingSink()
            session.mustRun("t = " + code, sink: sink)
            return (try table(session, "t"), sink.progressUpdates.contains { $0.task == "splice" })
        }
        let frontier = try splices("frontier s metric=ce_score model=gpt2 corpus=web tokens=96 context=32")
        XCTAssertTrue(frontier.measured)
        let reused = try splices("splice g gpt2 web tokens=96 context=32")
        XCTAssertFalse(reused.measured, "the frontier already spliced g's SAEs over these windows")
        XCTAssertEqual(numbers(reused.table, "score"), Array(numbers(frontier.table, "ce_score")[2..<4]))
        XCTAssertTrue(try splices("splice g gpt2 web tokens=64 context=32").measured, "other windows are measured")
        session.mustRun("train g acts steps=1 batch=64")
        let retrained = try splices("splice g gpt2 web tokens=96 context=32")
        XCTAssertTrue(retrained.measured, "a further step changes the SAE: measured again")
        XCTAssertNotEqual(numbers(retrained.table, "score"), numbers(reused.table, "score"))
    }

    func testFitOfASweepIsTheFitOfEachGroup() throws {
        let tmp = Fixtures.temporaryDirectory("fit-sweep")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = trainedSweeps(tmp)
        session.mustRun("""
        g = sae relu toy expansion=4 alpha=0.3 seed=1
        train g toy steps=60 batch=256 log_every=60
        """)
        let sink = RecordingSink()
        session.mustRun("fs = fit r toy", sink: sink)
        let fs = try table(session, "fs")
        XCTAssertEqual(fs.columns, ["sae", "alpha", "slope", "intercept", "r", "p", "layers"])
        XCTAssertEqual(numbers(fs, "alpha"), [0.01, 0.3, 3])
        let one = try table(session, "fit g toy")
        for name in ["slope", "intercept", "r", "p"] {
            XCTAssertEqual(numbers(fs, name)[1], numbers(one, name)[0], accuracy: 1e-9, name)
        }
        XCTAssertNotEqual(numbers(fs, "slope")[0], numbers(fs, "slope")[2])
        XCTAssertEqual(sink.displays.compactMap { $0.data["image/svg+xml"] }.count, 1)
    }

    /// `pick` hands out a grid point's group itself: its eval is the sweep's rows for that value.
    func testPickGivesTheSweepsGroupAtAGridValue() throws {
        let tmp = Fixtures.temporaryDirectory("pick")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = trainedSweeps(tmp)
        session.mustRun("mid = pick n alpha=0.03")
        let picked = try table(session, "eval mid toy")
        let all = try table(session, "eval n toy")
        let rows = all.rows.filter { ($0[0] as? Double) == 0.03 }
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(picked.rows.map { $0[2] as? Double }, rows.map { $0[3] as? Double }, "the same L0 per layer")
        XCTAssertNotEqual(all.rows.filter { ($0[0] as? Double) == 0.3 }.map { $0[3] as? Double }, rows.map { $0[3] as? Double })
        XCTAssertTrue(session.mustFail("pick n alpha=0.5").message.contains("alpha=0.5 is not in the sweep's grid [0.003, 0.03, 0.3]"))
        XCTAssertTrue(session.mustFail("pick n k=3").message.contains("`n` varies alpha, not k"))
        XCTAssertTrue(session.mustFail("pick n").message.contains("give the grid value: pick n alpha=VALUE"))
    }

    func testRefusalsNameTheProblem() throws {
        let tmp = Fixtures.temporaryDirectory("frontier-refusals")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = Session()
        session.mustRun("""
        toy = synth d=16 features=64 active=3 layers=2 norms=[1,4] tokens=2k seed=3 out="\(tmp.path)/toy"
        r = sweep relu toy expansion=2 alpha=[0.1, 1]
        """)
        let unknown = session.mustFail("frontier r metric=accuracy").message
        XCTAssertTrue(unknown.contains("expected one of explained_variance, mse, ce_score, kl_score"), unknown)
        let noModel = session.mustFail("frontier r metric=ce_score").message
        XCTAssertTrue(noModel.contains("metric=ce_score splices each SAE into a model: give model=MODEL and corpus=CORPUS"), noModel)
        session.mustRun("gpt2 = load gpt2 \"\(Fixtures.data.path)/gpt2-tiny\"")
        let noCorpus = session.mustFail("match r r metric=kl_score model=gpt2").message
        XCTAssertTrue(noCorpus.contains("metric=kl_score splices each SAE into a model: give model=MODEL and corpus=CORPUS"), noCorpus)
        let wrongModel = session.mustFail("frontier r metric=ce_score model=toy").message
        XCTAssertTrue(wrongModel.contains("`toy` is a store"), wrongModel)
        let layer = session.mustFail("frontier r layer=7").message
        XCTAssertTrue(layer.contains("layer 7 is not in `r`; its layers are 0, 1"), layer)
        let matchLayer = session.mustFail("match r r layer=2").message
        XCTAssertTrue(matchLayer.contains("layer 2 is not in `r`"), matchLayer)
        let notASweep = session.mustFail("frontier toy").message
        XCTAssertTrue(notASweep.contains("`toy` is a store"), notASweep)
        XCTAssertTrue(session.mustFail("match r").message.contains("match"), "match needs two curves")
    }
}
