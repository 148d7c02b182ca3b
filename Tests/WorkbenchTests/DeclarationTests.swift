import Foundation
import Tensor
import XCTest
@testable import Workbench

/// A verb's declaration is the one place its options, kinds, defaults and required-ness are written: usage, help,
/// validation, completion and the glue read it.
final class DeclarationTests: XCTestCase {
    /// The usage line names every positional and every option the verb declares (hand-written lines had drifted:
    /// `splice` without context=, `top` without tokens=/model=, `fit` without tokens=, `cosine` without seed=).
    func testUsageNamesEveryDeclaredParameter() {
        let registry = VerbRegistry.standard()
        var checked = 0
        for verb in registry.visible {
            for p in verb.positionals { XCTAssertTrue(verb.usage.contains(p.name), "\(verb.name): usage lacks \(p.name): \(verb.usage)") }
            for o in verb.options {
                checked += 1
                XCTAssertTrue(verb.usage.contains("\(o.name)="), "\(verb.name): usage lacks \(o.name)=: \(verb.usage)")
            }
        }
        XCTAssertGreaterThan(checked, 60)
        let usage = { (name: String) in registry.verb(named: name)!.usage }
        XCTAssertTrue(usage("splice").contains("[context=N]"), usage("splice"))
        XCTAssertTrue(usage("top").contains("layer=N feature=N") && usage("top").contains("[model=MODEL]"), usage("top"))
        XCTAssertTrue(usage("train").contains(" steps=N|tokens=N|until=N [batch=4096]"), usage("train"))
        XCTAssertTrue(usage("export").contains("[steps=N|tokens=N]"), usage("export"))
        XCTAssertTrue(usage("load").contains("\n  load text: [field=\"text\"]"), usage("load"))
    }

    func testDefaultsAreTypedValuesOfTheParameterKind() {
        func value(_ text: ParameterDefault, _ kind: ParameterKind) -> ParameterDefault.Literal? {
            Parameter.optional("x", kind, default: text, "").default?.literal
        }
        XCTAssertEqual(value("4096", .integer), .number(4096))
        XCTAssertEqual(value("1M", .integer), .number(1_000_000))
        XCTAssertEqual(value("1e-3", .number), .number(0.001))
        XCTAssertEqual(value(4096, .integer), .number(4096))
        XCTAssertEqual(value(false, .bool), .bool(false))
        XCTAssertEqual(value("false", .bool), .bool(false))
        XCTAssertEqual(value("sum", .word(["sum", "mean"])), .string("sum"))
        XCTAssertEqual(value("\"text\"", .string), .string("text"))
        XCTAssertEqual(value("[1,4,16,64]", .numbers), .numbers([1, 4, 16, 64]))
        XCTAssertEqual(value("mlp_out", .hookName([])), .string("mlp_out"))
        // Text that is no literal of the kind describes what the verb does; the call returns nil for it.
        XCTAssertNil(value("off", .integer))
        XCTAssertNil(value("session seed", .integer))
        XCTAssertNil(value("1.5", .integer))
        XCTAssertNil(value("other", .word(["sum", "mean"])))
        XCTAssertNil(value(.described("16"), .number))
        XCTAssertEqual(Parameter.optional("x", .integer, default: 10_000, "").defaultText, "10k")
    }

    /// The glue reads defaults through the call: the declared value comes back when the option is not given,
    /// and `has` still says whether it was written.
    func testTheCallReturnsDeclaredDefaults() throws {
        let session = Session()
        let registry = VerbRegistry.standard()
        var parser = Parser("train a b", isVerb: { registry.verb(named: $0) != nil })
        let statement = try XCTUnwrap(try parser.nextStatement())
        func call(_ verb: String) -> Call {
            Call(session: session, verb: registry.verb(named: verb)!, statement: statement, sink: RecordingSink(),
                 cancellation: CancellationFlag(), verbPosition: SourcePosition(line: 1, column: 1, offset: 0),
                 arguments: [], argumentPositions: [], options: [:], optionPositions: [:])
        }
        let train = call("train")
        XCTAssertEqual(train.integer("batch"), 4096)
        XCTAssertEqual(train.number("lr"), 1e-3)
        XCTAssertEqual(train.integer("log_every"), 100)
        XCTAssertFalse(train.has("batch"))
        XCTAssertNil(train.integer("resample_every"), "a described default (off) is no value")
        XCTAssertEqual(call("splice").integer("tokens"), 10_000)
        XCTAssertEqual(call("synth").numbers("norms"), [1, 4, 16, 64])
        XCTAssertEqual(call("harvest").string("hook"), "mlp_out")
        XCTAssertEqual(call("load").string("field"), "text")
        XCTAssertEqual(call("run").flag("bos"), true)
        XCTAssertNil(call("set").integer("seed"), "`set threads=2` must not reset the seed")
        // Every option with a value default returns it.
        for verb in registry.visible {
            let c = call(verb.name)
            for o in verb.options { if let d = o.defaultValue { XCTAssertNotNil(c.option(o.name), "\(verb.name) \(o.name)= \(d)") } }
        }
    }

    func testValidationFromTheDeclaration() throws {
        let tmp = Fixtures.temporaryDirectory("declaration")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = Session()
        session.mustRun("toy = synth d=8 features=16 active=2 norms=[1,3] tokens=2k seed=1 out=\"\(tmp.path)/toy\"\ns = sae relu toy expansion=2 alpha=1e-3")
        // Every missing required option is named at once, with the usage.
        let top = session.mustFail("top s toy k=3").message
        XCTAssertTrue(top.contains("`top` needs layer=N and feature=N; usage: top SAE STORE layer=N feature=N"), top)
        XCTAssertTrue(session.mustFail("synth d=8").message.contains("`synth` needs out=\"PATH\""))
        // A required group: one of them, and never two.
        XCTAssertTrue(session.mustFail("train s toy batch=8").message.contains("`train` needs steps=N, tokens=N or until=N"))
        let both = session.mustFail("train s toy steps=1 tokens=8")
        XCTAssertTrue(both.message.contains("give steps=, tokens= or until=, not both"), both.message)
        XCTAssertTrue(both.message.contains("line 1, column 21:"), "the error points at the second: \(both.message)")
        XCTAssertTrue(session.mustFail("export s \"\(tmp.path)/t.py\" steps=1 tokens=8").message.contains("give steps= or tokens=, not both"))
        // An option of one form only.
        let form = session.mustFail("load acts \"\(tmp.path)/toy\" field=\"x\"").message
        XCTAssertTrue(form.contains("field= is not an option of acts: it applies only to `load text`"), form)
        XCTAssertTrue(session.mustFail("sae topk toy alpha=1").message.contains("alpha= is not an option of topk: it applies only to `sae relu`, `sae nsae`"))
    }

    /// `steps=` on a trained group means that many more; `until=N` trains to N steps in total.
    func testTrainUntilATotalAndStepsMore() throws {
        let tmp = Fixtures.temporaryDirectory("until")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = Session()
        session.mustRun("toy = synth d=8 features=16 active=2 norms=[1,3] tokens=2k seed=1 out=\"\(tmp.path)/toy\"\ns = sae relu toy expansion=2 alpha=1e-3")
        func lastStep(_ code: String) throws -> Double {
            session.mustRun("log = " + code)
            guard case .table(let table)? = session.value(named: "log"), case .number(let step)? = table.rows.last?.first else {
                XCTFail("no log table"); return -1
            }
            return step
        }
        XCTAssertEqual(try lastStep("train s toy until=3 batch=8 log_every=1"), 3)
        XCTAssertEqual(try lastStep("train s toy steps=2 batch=8 log_every=1"), 5, "steps= adds to the 3 taken")
        XCTAssertEqual(try lastStep("train s toy until=8 batch=8 log_every=1"), 8, "until= counts the total")
        let refused = session.mustFail("train s toy until=8 batch=8").message
        XCTAssertTrue(refused.contains("the group has 8 steps already, so until=8 leaves nothing to train"), refused)
        XCTAssertTrue(session.mustFail("train s toy until=9 steps=1").message.contains("not both"))
    }

    func testCompletionFollowsTheDeclaration() {
        let session = Session()
        let top = session.complete("top a b ", cursor: 8).matches
        XCTAssertEqual(Array(top.prefix(2)), ["layer=", "feature="], "required options first: \(top)")
        let train = session.complete("train a b steps=1 ", cursor: 18).matches
        XCTAssertFalse(train.contains("tokens=") || train.contains("until=") || train.contains("steps="), "\(train)")
        XCTAssertTrue(train.contains("batch="), "\(train)")
        let load = session.complete("load text \"x\" ", cursor: 14).matches
        XCTAssertTrue(load.contains("field=") && !load.contains("processing=") && !load.contains("incomplete="), "\(load)")
    }

    func testHelpSaysRequiredAndGroupsFromTheDeclaration() throws {
        let registry = VerbRegistry.standard()
        for verb in registry.visible {
            for o in verb.options { XCTAssertFalse(o.help.contains("(required)"), "\(verb.name) \(o.name)=: required-ness is declared, not written in prose") }
        }
        let top = HelpText.verb(registry.verb(named: "top")!)
        XCTAssertTrue(top.contains("the layer (required)"), top)
        let train = HelpText.verb(registry.verb(named: "train")!)
        XCTAssertTrue(train.contains("(required unless tokens= or until= is given)"), train)
        XCTAssertTrue(train.contains("on a group that has trained already, that many more"), train)
    }
}
