import XCTest
import Tensor
@testable import Workbench

/// The `sweep` verb and the verbs that take a sweep (train, eval, save, load sae), on a synthetic store; and the
/// language's `geom(lo, hi, n)`.
final class SweepVerbTests: XCTestCase {
    private func session(_ tmp: URL) -> Session {
        let session = Session()
        session.mustRun("acts = synth d=16 features=32 active=2 layers=2 norms=[1,4] tokens=4k seed=1 out=\"\(tmp.path)/acts\"")
        return session
    }

    private func json(_ bundle: MimeBundle?) throws -> JSON { try JSON.parse(try XCTUnwrap(bundle?.data["application/json"])) }

    func testGeomIsALogSpacedListAndItsErrorsNameLineAndColumn() throws {
        let session = Session()
        XCTAssertEqual(session.mustRun("geom(1e-4, 1e-2, 3)")?.plain, "[0.0001, 0.001, 0.01]")
        XCTAssertEqual(session.mustRun("x = geom(8, 64,\n 4)\nx")?.plain, "[8, 16, 32, 64]", "a call continues over lines as a list does")
        XCTAssertEqual(session.isComplete("x = geom(1,"), .incomplete(indent: ""))
        XCTAssertEqual(session.mustRun("[geom(1, 4, 3), 2]")?.plain, "[[1, 2, 4], 2]")
        let cases: [(String, String)] = [
            ("geom(1, 2, 1)", "error at line 1, column 12: geom's n must be a whole number from 2 to 1000, found 1"),
            ("geom(1, 2, 2.5)", "error at line 1, column 12: geom's n must be a whole number from 2 to 1000, found 2.5"),
            ("geom(2, 1, 3)", "error at line 1, column 9: geom needs lo < hi, found lo = 2 and hi = 1"),
            ("geom(1, 1, 3)", "error at line 1, column 9: geom needs lo < hi"),
            ("geom(0, 1, 3)", "error at line 1, column 6: geom's lo must be positive"),
            ("geom(-1, 1, 3)", "error at line 1, column 6: geom's lo must be positive"),
            ("geom(1, 2)", "error at line 1, column 1: geom takes 3 arguments (lo, hi, n), found 2"),
            ("geom(1, \"a\", 3)", "error at line 1, column 9: geom's hi must be a number, found a string"),
            ("y = goem(1, 2, 3)", "error at line 1, column 5: unknown function `goem` (did you mean `geom`?)"),
            ("geom(1, 2 3)", "error at line 1, column 11: expected `,` or `)` in the arguments of `geom(`"),
        ]
        for (code, message) in cases {
            let failure = session.mustFail(code)
            XCTAssertTrue(failure.message.hasPrefix(message), "\(code): \(failure.message)")
        }
        XCTAssertTrue(try XCTUnwrap(session.mustRun("help")).plain.contains("geom(lo, hi, n)"), "help lists the functions")
    }

    func testSweepRefusalsSayWhatIsWrong() throws {
        let tmp = Fixtures.temporaryDirectory("sweep-refusals")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = session(tmp)
        let cases: [(String, String)] = [
            ("s = sweep relu acts alpha=1e-3", "column 21: the grid alpha= needs a list of values such as [1e-4, 1e-3] or geom(lo, hi, n), found the number 0.001"),
            ("s = sweep relu acts alpha=[]", "the alpha grid is empty"),
            ("s = sweep relu acts alpha=[1e-3, 0.001]", "the alpha grid holds 0.001 twice (values 1 and 2)"),
            ("s = sweep relu acts alpha=[1e-3, -1]", "alpha = -1 (grid value 2): alpha must be ≥ 0"),
            ("s = sweep topk acts k=[4, 0] expansion=2", "k = 0 (grid value 2): SAE config: k must be a whole number in 1...d_sae (32)"),
            ("s = sweep topk acts k=[4, 33] expansion=2", "k = 33 (grid value 2): SAE config: k must be a whole number in 1...d_sae (32)"),
            ("s = sweep topk acts k=geom(2, 30, 3)", "k grid value 2 is 7.74596669241483, not a whole number: topk's k takes whole numbers"),
            ("s = sweep jumprelu acts l0_coefficient=[-1]", "l0_coefficient = -1 (grid value 1): SAE config: l0_coefficient must be ≥ 0"),
            ("s = sweep relu acts k=[4, 8]", "k= is not an option of relu: it applies only to `sweep topk`, `sweep batchtopk`"),
            ("s = sweep nsae acts alpha=[1e-3] sigma=[0.5, 1]", "a nsae sweep varies alpha, its sparsity control; sigma= takes one value"),
            ("s = sweep relu acts alpha=[1e-3] k=4", "k= is not an option of relu"),
            ("s = sweep nsae acts alpha=[1e-3] sigma=\"a\"", "sigma= needs a number, found the string \"a\""),
            ("s = sweep relu acts", "`sweep relu` needs its grid: alpha=[v1, v2, …] or alpha=geom(lo, hi, n)"),
            ("s = sweep relu acts alpha=[1e-3, \"x\"]", "alpha grid value 2 is the string \"x\", not a number"),
            ("s = sweep relu acts alpha=geom(1e-3, 1e-2, 1)", "geom's n must be a whole number from 2 to 1000"),
            ("s = sweep relu acts alpha=geom(1e-2, 1e-3, 4)", "geom needs lo < hi"),
            ("s = sweep relu acts alpha=geom(0, 1e-3, 4)", "geom's lo must be positive"),
            ("s = sweep relu acts alpha=geom(1e-4, 1, 1000) expansion=100000", "the sweep's 1000 SAE groups' weights, gradients and Adam state needs"),
            ("s = sweep relu acts alpha=[1e-3] init=scaled", "init=scaled is for nsae"),
        ]
        for (code, message) in cases {
            let failure = session.mustFail(code)
            XCTAssertTrue(failure.message.contains(message), "\(code): \(failure.message)")
            XCTAssertTrue(failure.message.hasPrefix("error at line 1, column"), failure.message)
        }
        XCTAssertNil(session.value(named: "s"), "nothing was bound")
        XCTAssertNotNil(session.value(named: "acts"), "the errors keep what was bound")
    }

    func testSweepTrainsShowsItselfSavesAndLoadsBack() throws {
        let tmp = Fixtures.temporaryDirectory("sweep-verbs")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = session(tmp)
        let made = try XCTUnwrap(session.mustRun("s = sweep relu acts alpha=geom(1e-3, 1, 4) expansion=2\ns"))
        XCTAssertTrue(made.plain.hasPrefix("sweep: 4 × 2 relu 16→32, alpha in [0.001, 0.01, 0.1, 1], trained 0 steps"), made.plain)
        XCTAssertTrue(made.plain.contains("alpha  layer  hook"), made.plain)

        let log = try json(session.mustRun("train s acts steps=30 batch=128 log_every=10"))
        guard case .array(let columns)? = log["columns"], case .array(let rows)? = log["rows"] else { return XCTFail("\(log)") }
        XCTAssertEqual(columns.first, .string("alpha"))
        XCTAssertEqual(rows.count, 4 * 2 * 3, "a row per grid value, layer and log point")

        let shown = try XCTUnwrap(session.mustRun("s"))
        XCTAssertTrue(shown.plain.contains("trained 30 steps"), shown.plain)
        let html = try XCTUnwrap(shown.data["text/html"])
        XCTAssertTrue(html.contains("<table") && html.contains("explained_variance"), html)
        let value = try json(shown)
        XCTAssertEqual(value["grid_option"], .string("alpha"))
        XCTAssertEqual(value["values"], .array([.number(0.001), .number(0.01), .number(0.1), .number(1)]))
        guard case .array(let groups)? = value["groups"], case .array(let layers)? = groups.first?["layers"] else { return XCTFail("\(value)") }
        XCTAssertEqual(groups.count, 4)
        let l0 = groups.compactMap { g -> Double? in
            guard case .array(let layers)? = g["layers"] else { return nil }
            return layers[1]["l0"]?.doubleValue
        }
        XCTAssertEqual(l0.count, 4, "train evaluates the sweep for its table")
        XCTAssertGreaterThan(l0[0], l0[3], "alpha 0.001 fires more than alpha 1 on the norm-4 layer: \(l0)")
        XCTAssertEqual(layers[0]["steps"]?.doubleValue, 30)

        let eval = try json(session.mustRun("eval s acts tokens=1000"))
        guard case .array(let evalRows)? = eval["rows"] else { return XCTFail("\(eval)") }
        XCTAssertEqual(evalRows.count, 8)
        // The sweep's store read once for all groups gives each grid point the numbers `eval` of it alone gives.
        session.mustRun("p = pick s alpha=0.1")
        let alone = try json(session.mustRun("eval p acts tokens=1000"))
        guard case .array(let aloneRows)? = alone["rows"] else { return XCTFail("\(alone)") }
        let sweepRows = evalRows.compactMap { row -> [JSON]? in
            guard case .array(let cells) = row, cells.first?.doubleValue == 0.1 else { return nil }
            return Array(cells.dropFirst())
        }
        XCTAssertEqual(sweepRows.count, 2)
        XCTAssertEqual(sweepRows, aloneRows.compactMap { if case .array(let c) = $0 { return c } else { return nil } })

        session.mustRun("save s \"\(tmp.path)/saved\"")
        session.mustRun("t = load sae \"\(tmp.path)/saved\"")
        XCTAssertEqual(session.value(named: "t")?.typeName, "sweep")
        let loaded = try json(session.mustRun("t"))
        XCTAssertEqual(loaded["values"], value["values"])
        session.mustRun("g = load sae \"\(tmp.path)/saved/relu-alpha-0.1\"")
        XCTAssertEqual(session.value(named: "g")?.typeName, "sae", "one grid point's folder is a plain group")
        XCTAssertTrue(try XCTUnwrap(session.mustRun("vars")).plain.contains("sweep  4 × 2 relu 16→32"))
        // A loaded sweep trains on (its SAEs are fresh optimizer-wise, as a loaded group's are).
        session.mustRun("train t acts steps=2 batch=64")

        let failure = session.mustFail("train acts acts steps=1")
        XCTAssertTrue(failure.message.contains("expected a sae or a sweep here, but `acts` is a store"), failure.message)
    }

    func testCtrlCKeepsEverySAEOfTheSweepAndTrainResumes() throws {
        let tmp = Fixtures.temporaryDirectory("sweep-interrupt")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = session(tmp)
        session.mustRun("s = sweep nsae acts alpha=[1e-3, 1e-2, 1e-1] expansion=2")
        let flag = CancellationFlag()
        let sink = RecordingSink(cancelAfter: (4, flag))
        guard case .interrupted(let message) = session.execute("train s acts steps=50 batch=64 checkpoint=\"\(tmp.path)/s.ckpt\"", sink: sink, cancellation: flag) else {
            return XCTFail("expected an interruption")
        }
        XCTAssertTrue(message.contains("train kept the 4 of 50 steps it finished"), message)
        XCTAssertTrue(sink.streams.joined().contains("train: stopped after 4 of 50 steps; all 6 SAEs of the sweep keep them (4 steps in all)"), sink.streams.joined())
        XCTAssertEqual(sink.progressUpdates.map(\.total), [50, 50, 50, 50], "one bar for the whole sweep")
        XCTAssertTrue(sink.progressUpdates[0].message.contains("L0 over the grid"), sink.progressUpdates[0].message)
        XCTAssertTrue(try XCTUnwrap(session.mustRun("s")).plain.contains("trained 4 steps"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(tmp.path)/s.ckpt"), "the checkpoint is written at the interrupt")
        session.mustRun("train s acts steps=3 batch=64")
        let value = try json(session.mustRun("s"))
        XCTAssertEqual(value["steps"]?.doubleValue, 7)
    }

    /// Tests/scripts/sweep.nsae in `--json` mode: the sweep forms as a script uses them.
    func testSweepScript() throws {
        let tmp = Fixtures.temporaryDirectory("sweep-script")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = try ScriptTests.run(script: "sweep.nsae", tmp: tmp)
        XCTAssertEqual(out.status, 1, "the last line is an error")
        XCTAssertEqual(out.result(line: 3)["type"] as? String, "sweep")
        XCTAssertEqual(out.table(line: 5).rows.count, 4 * 2 * 2, "4 grid values × 2 layers × 2 log rows")
        let alpha = out.numbers(line: 7, column: "alpha"), l0 = out.numbers(line: 7, column: "l0")
        XCTAssertEqual(alpha, [0.01, 0.01, 0.1, 0.1, 1, 1, 10, 10])
        for layer in 0..<2 {
            let column = stride(from: layer, to: 8, by: 2).map { l0[$0] }
            for g in 1..<4 { XCTAssertLessThan(column[g], column[g - 1], "layer \(layer): L0 over alpha is \(column)") }
        }
        XCTAssertEqual(out.numbers(line: 8, column: "l0"), [1, 1, 2, 2, 4, 4], "topk evaluates at L0 = k")
        let reloaded = out.numbers(line: 11, column: "mse"), original = out.numbers(line: 7, column: "mse")
        XCTAssertEqual(reloaded.count, 8)
        for (a, b) in zip(reloaded, original) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a))) }
        XCTAssertTrue("\(try XCTUnwrap(out.objects.last))".contains("geom needs lo < hi"), "\(out.objects.last ?? [:])")
    }
}
