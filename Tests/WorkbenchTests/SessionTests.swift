import Tensor
import XCTest
@testable import Workbench

final class SessionTests: XCTestCase {
    func testBareValuesPrintInShortestForm() {
        let session = Session()
        XCTAssertEqual(session.mustRun("2k")?.plain, "2000")
        XCTAssertEqual(session.mustRun("1e-3")?.plain, "0.001")
        XCTAssertEqual(session.mustRun("x = 2.5\nx")?.plain, "2.5")
        XCTAssertEqual(session.mustRun("[1, \"a\", true]")?.plain, "[1, \"a\", true]")
        XCTAssertEqual(session.mustRun("0..3")?.data["application/json"], "[0, 1, 2, 3]")
        XCTAssertNil(session.mustRun("y = 3"), "a bound result is not the cell's result")
    }

    func testEchoWritesAStreamAndReturnsNone() {
        let session = Session()
        let sink = RecordingSink()
        XCTAssertNil(session.mustRun("echo \"hello\\tworld\"", sink: sink))
        XCTAssertEqual(sink.streams, ["hello\tworld\n"])
    }

    func testShowDisplaysNow() {
        let session = Session()
        let sink = RecordingSink()
        session.mustRun("show 42\necho \"after\"", sink: sink)
        XCTAssertEqual(sink.displays.map(\.plain), ["42"])
        XCTAssertEqual(sink.streams, ["after\n"])
    }

    func testVarsListsNamesTypesAndSummariesInBindingOrder() throws {
        let session = Session()
        session.mustRun("b = 2k\na = \"text\"\nb = 3")
        let json = try XCTUnwrap(session.mustRun("vars")?.data["application/json"])
        XCTAssertEqual(json, #"{"columns": ["name", "type", "summary"], "rows": [["b", "number", "3"], ["a", "string", "\"text\""]]}"#)
    }

    func testSetChangesSettingsAndRejectsBadValues() {
        let session = Session()
        session.mustRun("set seed=7 threads=2")
        XCTAssertEqual(session.settings.seed, 7)
        XCTAssertEqual(session.settings.threads, 2)
        XCTAssertTrue(session.mustFail("set threads=0").message.contains("threads must be between 1 and 1024"))
        XCTAssertTrue(session.mustFail("set seed=1.5").message.contains("expected a whole number for `seed=`"))
        BLAS.setThreads(1)
    }

    func testUnknownVerbAndOptionSuggestTheNearest() {
        let session = Session()
        let verb = session.mustFail("x = 1\ntrian x")
        XCTAssertEqual(verb.line, 2)
        XCTAssertTrue(verb.message.hasPrefix("error at line 2, column 1: unknown verb `trian` (did you mean `train`?)"), verb.message)
        XCTAssertTrue(verb.message.hasSuffix("\n  trian x\n  ^"), verb.message)
        let option = session.mustFail("set thread=2")
        XCTAssertTrue(option.message.contains("column 5: unknown option `thread` (did you mean `threads`?)"), option.message)
        XCTAssertTrue(option.message.hasSuffix("\n  set thread=2\n      ^"), option.message)
    }

    func testErrorsKeepBoundValuesAndStopAtTheFirstError() {
        let session = Session()
        let sink = RecordingSink()
        if case .error(_, _, let line) = session.execute("a = 1\nbogus 2\necho \"never\"", sink: sink, cancellation: CancellationFlag()) {
            XCTAssertEqual(line, 2)
        } else {
            XCTFail("expected an error")
        }
        XCTAssertTrue(sink.streams.isEmpty, "statements after the error do not run")
        XCTAssertEqual(session.mustRun("a")?.plain, "1")
    }

    /// A cell is parsed whole before anything runs: a typo on line 3 leaves lines 1–2 unrun.
    func testASyntaxErrorAnywhereRunsNothing() {
        let session = Session()
        let sink = RecordingSink()
        guard case .error(let name, let message, let line) = session.execute("a = 1\necho \"ran\"\nb = [1 2]",
                                                                             sink: sink, cancellation: CancellationFlag()) else {
            return XCTFail("expected an error")
        }
        XCTAssertEqual(name, "SyntaxError")
        XCTAssertEqual(line, 3)
        XCTAssertTrue(message.contains("nothing ran"), message)
        XCTAssertTrue(sink.streams.isEmpty, "line 2 must not run before the syntax error on line 3")
        XCTAssertNil(session.value(named: "a"), "line 1 must not run before the syntax error on line 3")
    }

    /// Every unbound result is shown: earlier ones as displays in order, the last as the result.
    func testEveryUnboundResultOfACellIsShown() {
        let session = Session()
        let sink = RecordingSink()
        guard case .ok(let result) = session.execute("11\nx = 12\n13\necho \"e\"\n14", sink: sink, cancellation: CancellationFlag()) else {
            return XCTFail("expected success")
        }
        XCTAssertEqual(sink.displays.map(\.plain), ["11", "13"])
        XCTAssertEqual(result?.plain, "14")
        guard case .ok(let bound) = session.execute("15\ny = 16", sink: RecordingSink(), cancellation: CancellationFlag()) else {
            return XCTFail("expected success")
        }
        XCTAssertNil(bound, "a cell ending in a binding has no result")
    }

    func testUnknownNameListsBoundNames() {
        let session = Session()
        session.mustRun("acts = 1")
        let error = session.mustFail("show act")
        XCTAssertTrue(error.message.contains("unknown name `act` (did you mean `acts`?)"), error.message)
    }

    func testVerbNamesCannotBeRebound() {
        let session = Session()
        XCTAssertTrue(session.mustFail("train = 3").message.contains("it is a verb"))
    }

    func testArgumentKindsAreChecked() {
        let session = Session()
        session.mustRun("n = 3")
        let wrongType = session.mustFail("train n n steps=1")
        XCTAssertTrue(wrongType.message.contains("expected a sae or a sweep here, but `n` is a number")
                      || wrongType.message.contains("not yet available"), wrongType.message)
        let missing = session.mustFail("help train extra")
        XCTAssertTrue(missing.message.contains("takes 1 argument"), missing.message)
        let badWord = session.mustFail("load gtp2 \"x\"")
        XCTAssertTrue(badWord.message.contains("expected one of gpt2, text, acts, sae here, found `gtp2` (did you mean `gpt2`?)"), badWord.message)
    }

    func testHelpListsEveryVerbAndDescribesOne() throws {
        let session = Session()
        let overview = try XCTUnwrap(session.mustRun("help")?.plain)
        for verb in ["help", "echo", "show", "vars", "set", "load", "tokenize", "run", "harvest", "synth", "stats", "sae",
                     "train", "eval", "splice", "features", "top", "feature", "logits", "norms", "cosine", "fit",
                     "recovery", "compare", "save"] {
            XCTAssertTrue(overview.contains("\n\(verb) "), "help lists \(verb)")
            let detail = try XCTUnwrap(session.mustRun("help \(verb)")?.plain)
            XCTAssertTrue(detail.contains("usage: "), detail)
            XCTAssertTrue(detail.contains("example:"), detail)
        }
        let train = try XCTUnwrap(session.mustRun("help train")?.plain)
        XCTAssertTrue(train.contains("batch=N") && train.contains("(default: 4096)"), train)
        XCTAssertTrue(session.mustFail("help trian").message.contains("did you mean `train`"))
        // `load sae` names every architecture it reads, from the registry, with its SAELens name.
        let load = try XCTUnwrap(session.mustRun("help load")?.plain).replacingOccurrences(of: "\n", with: " ")
            .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        for (name, saelens) in [("relu", "standard"), ("nsae", "nsae"), ("topk", "topk"), ("batchtopk", "jumprelu"), ("jumprelu", "jumprelu")] {
            XCTAssertTrue(load.contains("\(name) (SAELens `\(saelens)`)"), load)
        }
    }

    func testEveryHelpExampleParsesAndNamesOnlyDeclaredOptions() throws {
        let registry = VerbRegistry.standard()
        XCTAssertGreaterThan(registry.visible.count, 10, "the loop below checks every visible verb")
        var optionsChecked = 0
        for verb in registry.visible {
            var parser = Parser(verb.example, isVerb: { registry.verb(named: $0) != nil })
            let statement = try XCTUnwrap(try parser.nextStatement(), verb.name)
            guard case .command(let name, _, let options) = statement.body else { XCTFail(verb.name); continue }
            XCTAssertEqual(name.value, verb.name)
            for option in options {
                optionsChecked += 1
                XCTAssertTrue(verb.options.contains { $0.name == option.key.value }, "\(verb.name) example uses undeclared \(option.key.value)")
            }
        }
        XCTAssertGreaterThan(optionsChecked, 0, "some examples name options")
    }

    /// docs/commands.md is generated (`nsae help --markdown > docs/commands.md`); it must match the code.
    func testCommittedCommandReferenceMatchesTheGeneratedOne() throws {
        let committed = try String(contentsOf: Fixtures.repoRoot.appendingPathComponent("docs/commands.md"), encoding: .utf8)
        XCTAssertEqual(committed, HelpText.markdown(), "docs/commands.md is stale: regenerate it with `nsae help --markdown > docs/commands.md`")
    }

    func testIsComplete() {
        let session = Session()
        XCTAssertEqual(session.isComplete("x = 1"), .complete)
        XCTAssertEqual(session.isComplete("train a b \\"), .incomplete(indent: ""))
        XCTAssertEqual(session.isComplete("echo \"abc"), .incomplete(indent: ""))
        XCTAssertEqual(session.isComplete("x = [1 2]"), .invalid)
        XCTAssertEqual(session.isComplete("x = [1, 2"), .incomplete(indent: ""))
        XCTAssertEqual(session.isComplete("echo \"abc\ndef\""), .complete)
        XCTAssertEqual(session.isComplete(""), .complete)
    }

    func testCompletionOfVerbsOptionsNamesAndWords() {
        let session = Session()
        session.mustRun("tiny = 1\ntoy = 2")
        XCTAssertEqual(session.complete("tr", cursor: 2).matches, ["train"])
        let t = session.complete("t", cursor: 1)
        XCTAssertTrue(t.matches.contains("tokenize") && t.matches.contains("tiny") && t.matches.contains("toy"), "\(t.matches)")
        let option = session.complete("train a b ba", cursor: 12)
        XCTAssertEqual(option.matches, ["batch="])
        XCTAssertEqual(option.start, 10)
        XCTAssertEqual(session.complete("set se", cursor: 6).matches, ["seed="])
        XCTAssertEqual(session.complete("x = load g", cursor: 10).matches, ["gpt2"])
        XCTAssertEqual(session.complete("sae relu a noise=a", cursor: 18).matches, ["always"])
        XCTAssertEqual(session.complete("help tra", cursor: 8).matches, ["train"])
        // A statement continued by `\\`, an open list or an open string: options of the verb on its first line.
        for code in ["train a b \\\n  ba", "train a b layers=[1,\n  2] ba", "echo \"x\ny\"\ntrain a b ba", "x = 1 # [\ntrain a b ba"] {
            XCTAssertEqual(session.complete(code, cursor: code.unicodeScalars.count).matches, ["batch="], code)
        }
        let next = "x = [1,\n 2]\ntr"
        XCTAssertEqual(session.complete(next, cursor: next.unicodeScalars.count).matches, ["train"], "a closed list ends its statement")
    }

    func testCompletionOfPathsInsideStrings() throws {
        let dir = Fixtures.temporaryDirectory("complete")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data().write(to: dir.appendingPathComponent("model.bin"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("models"), withIntermediateDirectories: true)
        let code = "load gpt2 \"\(dir.path)/mo"
        let completion = session().complete(code, cursor: code.unicodeScalars.count)
        XCTAssertEqual(completion.matches, ["\(dir.path)/model.bin", "\(dir.path)/models/"])
        XCTAssertEqual(completion.start, 11)
    }

    private func session() -> Session { Session() }

    func testInspectDescribesVerbsAndNames() throws {
        let session = Session()
        session.mustRun("x = 2k")
        XCTAssertTrue(try XCTUnwrap(session.inspect("train a b", cursor: 2)).plain.contains("usage: train"))
        XCTAssertTrue(try XCTUnwrap(session.inspect("show x", cursor: 5)).plain.hasPrefix("x: number"))
        XCTAssertNil(session.inspect("   ", cursor: 1))
    }

    func testInterruptBetweenStatementsKeepsBindings() {
        let session = Session()
        let flag = CancellationFlag()
        flag.cancel()
        if case .interrupted = session.execute("a = 1", sink: RecordingSink(), cancellation: flag) {} else { XCTFail("expected interruption") }
        XCTAssertEqual(session.mustRun("b = 2\nb")?.plain, "2")
    }
}
