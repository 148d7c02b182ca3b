import Foundation
import Tensor
import XCTest
@testable import Workbench

/// Feeds random and mutated statements to the parser and the session: nothing may crash, every failure must be
/// a LanguageError with a position inside the input. NSAE_FUZZ_ITERATIONS=N runs a longer fuzz by hand, e.g.
/// `NSAE_FUZZ_ITERATIONS=5000000 swift test --filter FuzzTests`; NSAE_FUZZ_SEED picks the seed.
final class FuzzTests: XCTestCase {
    static let seeds = [
        "gpt2 = load gpt2 \"models/gpt2\"",
        "acts = harvest gpt2 web hook=mlp_out layers=0..11 tokens=2M context=128 out=\"acts/x\" dtype=f16",
        "norm = sae nsae acts expansion=16 alpha=1e-6 sigma=1 noise=always mse=mean beta=layer seed=3",
        "train base acts tokens=2M batch=4096 lr=1e-3 warmup=0 log_every=100 checkpoint=\"c\"",
        "toy = synth d=64 features=512 active=5 layers=4 norms=[1,4,16,64] tokens=200k seed=1 out=\"/tmp/x\"",
        "echo \"a \\\"quoted\\\" \\\\ string\\n\\twith escapes\"",
        "x = [0, 3, 5, [1, 2], \"s\", true, false, -2.5e-3, 1.5k] # comment",
        "top norm acts layer=5 feature=123 k=20 \\\n  context=8",
        "help train", "vars", "set threads=1 seed=2", "show 2k", "0..11", "2G",
    ]
    /// Bytes mutations draw from: the language's punctuation, name and number characters, and pieces of multi-byte
    /// UTF-8 (é, 😀) so that broken sequences also occur (String(decoding:) repairs them to U+FFFD).
    static let alphabet: [UInt8] = Array("abcxyz_019 .=,[]\"\\#\n\t-+eEkMG".utf8) + [0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80]
    static let seedBytes = seeds.map { Array($0.utf8) }

    var iterations: Int { Int(ProcessInfo.processInfo.environment["NSAE_FUZZ_ITERATIONS"] ?? "") ?? 100_000 }
    var seed: UInt64 { UInt64(ProcessInfo.processInfo.environment["NSAE_FUZZ_SEED"] ?? "") ?? 20_261_126 }

    /// Works on bytes: cheap enough that the parser, not the generator, dominates the run time.
    static func mutate(_ source: [UInt8], _ rng: inout RNG) -> String {
        var bytes = source
        for _ in 0...rng.int(below: 4) {
            let position = rng.int(below: bytes.count + 1)
            switch rng.int(below: 5) {
            case 0: bytes.insert(alphabet[rng.int(below: alphabet.count)], at: position)
            case 1: if position < bytes.count { bytes.remove(at: position) }
            case 2: if position < bytes.count { bytes[position] = alphabet[rng.int(below: alphabet.count)] }
            case 3:
                let other = seedBytes[rng.int(below: seedBytes.count)]
                bytes.insert(contentsOf: other[rng.int(below: other.count)...], at: position)
            default: bytes.removeSubrange(position...)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func randomText(_ rng: inout RNG) -> String {
        String(decoding: (0..<rng.int(below: 40)).map { _ in alphabet[rng.int(below: alphabet.count)] }, as: UTF8.self)
    }

    /// 100k statements by default, split over two tests to keep each short in a debug build.
    func testParserSurvivesMutatedStatements() { fuzzParser(count: iterations * 3 / 4, mutated: true, seed: seed) }
    func testParserSurvivesRandomText() { fuzzParser(count: iterations / 4, mutated: false, seed: seed &+ 7) }

    private func fuzzParser(count: Int, mutated: Bool, seed: UInt64) {
        var rng = RNG(seed: seed)
        let verbs = Set(VerbRegistry.standard().verbs.map(\.name))
        var parsed = 0, failed = 0
        for i in 0..<count {
            let text = mutated ? Self.mutate(Self.seedBytes[rng.int(below: Self.seedBytes.count)], &rng) : Self.randomText(&rng)
            var parser = Parser(text, isVerb: verbs.contains)
            do {
                parsed += try parser.parseAll().count
            } catch let error as LanguageError {
                failed += 1
                // Plain checks (XCTAssert per iteration would dominate the run time).
                let lines = text.utf8.reduce(1) { $1 == 10 ? $0 + 1 : $0 }
                if error.position.line < 1 || error.position.line > lines || error.position.column < 1
                    || error.position.offset > text.utf8.count {
                    XCTFail("position \(error.position) outside the input \(text.debugDescription)")
                }
                if i % 64 == 0, !error.rendered(in: text).contains("^") { XCTFail("no caret for \(text.debugDescription)") }
            } catch {
                XCTFail("non-language error \(error) for \(text.debugDescription)")
            }
        }
        XCTAssertGreaterThan(parsed, 0)
        XCTAssertGreaterThan(failed, 0)
    }

    /// The session on mutations of statements that do real engine work on tiny inputs (train, load, eval, stats,
    /// tokenize, sae, set) besides the light ones. A mutated statement runs unless its parse shows a size over
    /// `FuzzBounds` (it could run for minutes or fill memory) or a write (`save`, `out=`, `checkpoint=`: its path
    /// could leave the temporary directory); those are counted, and each seed verb must be reached often.
    func testSessionSurvivesMutatedStatements() throws {
        var rng = RNG(seed: seed &+ 1)
        let tmp = Fixtures.temporaryDirectory("fuzz-session")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let threadsBefore = BLAS.threads
        defer { BLAS.setThreads(threadsBefore) }
        let model = Fixtures.data.appendingPathComponent("gpt2-tiny").path
        let session = Session()
        session.mustRun("x = 1\ns = \"text\"")
        session.mustRun("toy = synth d=8 features=16 active=2 tokens=1k seed=1 out=\"\(tmp.path)/toy\"\n"
                        + "sm = sae relu toy expansion=2\ngpt2 = load gpt2 \"\(model)\"")
        let statements = ["echo \"hi\"", "show x", "vars", "help", "help sae", "x = [1, 2]", "y = 0..3", "set seed=4",
                          "2k", "tokenize gpt2 \"a b\"", "sae relu toy expansion=2", "train sm toy steps=1 batch=16",
                          "load gpt2 \"\(model)\"", "eval sm toy tokens=64", "stats toy", "set threads=1"]
        let mustReach = ["echo", "show", "vars", "help", "set", "tokenize", "sae", "train", "load", "eval", "stats"]
        let verbs = Set(VerbRegistry.standard().verbs.map(\.name))
        let count = max(1000, iterations / 20)
        var reached: [String: Int] = [:], held: [String: Int] = [:]
        for _ in 0..<count {
            let text = Self.mutate(Array(statements[rng.int(below: statements.count)].utf8), &rng)
            var parser = Parser(text, isVerb: verbs.contains)
            let parsed = (try? parser.parseAll()) ?? []
            if let reason = parsed.lazy.compactMap(FuzzBounds.reasonToHold).first {
                held[reason, default: 0] += 1
                continue
            }
            _ = session.execute(text, sink: RecordingSink(), cancellation: CancellationFlag())
            for statement in parsed {
                if case .command(let verb, _, _) = statement.body {
                    reached[verbs.contains(verb.value) ? verb.value : "(unknown verb)", default: 0] += 1
                }
            }
            if parsed.isEmpty { reached["(does not parse)", default: 0] += 1 }
        }
        print("session fuzz: \(count) mutated statements; ran, by verb: \(reached.sorted { $0.key < $1.key }); "
              + "held back: \(held.sorted { $0.key < $1.key })")
        for verb in mustReach {
            XCTAssertGreaterThanOrEqual(reached[verb] ?? 0, count / 1000, "mutations of `\(verb)` seldom ran")
        }
        XCTAssertLessThan(held.values.reduce(0, +), count / 4, "the bounds hold back most inputs: \(held)")
        XCTAssertEqual(session.mustRun("2k")?.plain, "2000", "the session still works")
        XCTAssertNotNil(session.mustRun("eval sm toy tokens=64"), "the engine objects still work")
    }
}

/// What keeps a mutated statement from running in the session fuzz: sizes that would make it slow or huge (each
/// number of a command, the length of a range or list) and writes to paths the mutation chose.
enum FuzzBounds {
    static let largestNumber = 256.0
    static let longestRange = 256

    static func reasonToHold(_ statement: Statement) -> String? {
        switch statement.body {
        case .value(let value):
            return tooLarge(value.value, checkNumbers: false)
        case .command(let verb, let arguments, let options):
            if verb.value == "save" { return "writes (save)" }
            if let key = options.first(where: { ["out", "checkpoint"].contains($0.key.value) })?.key.value {
                return "writes (\(key)=)"
            }
            if let threads = options.first(where: { $0.key.value == "threads" }), threads.value.value != .number(1) {
                return "threads other than 1 (process-wide)"
            }
            for expression in arguments.map(\.value) + options.map(\.value.value) {
                if let reason = tooLarge(expression, checkNumbers: true) { return reason }
            }
            return nil
        }
    }

    static func tooLarge(_ expression: Expr, checkNumbers: Bool) -> String? {
        switch expression {
        case .number(let v) where checkNumbers && !(abs(v) <= largestNumber): return "a number over \(Int(largestNumber))"
        case .range(let lo, let hi) where hi.subtractingReportingOverflow(lo).partialValue > longestRange
            || hi.subtractingReportingOverflow(lo).overflow:
            return "a range over \(longestRange)"
        case .list(let items):
            if items.count > longestRange { return "a list over \(longestRange)" }
            return items.lazy.compactMap { tooLarge($0.value, checkNumbers: checkNumbers) }.first
        default: return nil
        }
    }
}
