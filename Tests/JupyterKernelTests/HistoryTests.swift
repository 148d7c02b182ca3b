import XCTest
@testable import JupyterKernel

final class HistoryTests: XCTestCase {
    func sample() -> History {
        var history = History()
        for (line, input) in ["sum 1 2 3", "sum 10 20", "echo \"hi\"", "sum 1 2 3", "x = load gpt2 builtin"].enumerated() {
            history.record(line: line + 1, input: input)
        }
        history.recordOutput(line: 2, output: "30")
        return history
    }

    func testTailReturnsTheLastEntries() {
        XCTAssertEqual(sample().tail(2).map(\.line), [4, 5])
        XCTAssertEqual(sample().tail(99).count, 5)
        XCTAssertEqual(sample().tail(0).count, 0)
    }

    func testRangeIsHalfOpenAndKnowsItsSession() {
        let h = sample()
        XCTAssertEqual(h.range(session: 1, start: 2, stop: 4).map(\.line), [2, 3])
        XCTAssertEqual(h.range(session: 0, start: 4, stop: nil).map(\.line), [4, 5])
        XCTAssertEqual(h.range(session: 0, start: -2, stop: nil).map(\.line), [4, 5])
        XCTAssertEqual(h.range(session: 7, start: 1, stop: nil).count, 0, "no other sessions exist")
        XCTAssertEqual(h.range(session: 1, start: 2, stop: 3).first?.output, "30")
    }

    func testSearchIsAWholeInputGlob() {
        let h = sample()
        XCTAssertEqual(h.search(pattern: "sum 1 *", n: nil, unique: false).map(\.line), [1, 4])
        XCTAssertEqual(h.search(pattern: "sum 1 *", n: nil, unique: true).map(\.line), [4], "latest of equal inputs")
        XCTAssertEqual(h.search(pattern: "sum 1*", n: nil, unique: true).map(\.line), [2, 4])
        XCTAssertEqual(h.search(pattern: "sum", n: nil, unique: false).count, 0, "globs match the whole input")
        XCTAssertEqual(h.search(pattern: "*", n: 3, unique: false).map(\.line), [3, 4, 5])
        XCTAssertEqual(h.search(pattern: "echo \"h?\"", n: nil, unique: false).map(\.line), [3])
        XCTAssertEqual(h.search(pattern: "[a-f]cho*", n: nil, unique: false).map(\.line), [3])
        XCTAssertEqual(h.search(pattern: "[!s]*", n: nil, unique: false).map(\.line), [3, 5])
    }

    func testGlobEdgeCases() {
        func match(_ p: String, _ t: String) -> Bool { Glob.matches(Array(p.unicodeScalars), Array(t.unicodeScalars)) }
        XCTAssertTrue(match("", ""))
        XCTAssertFalse(match("", "a"))
        XCTAssertTrue(match("**a**", "bab"))
        XCTAssertTrue(match("a*b*c", "aXXbYYbZc"))
        XCTAssertFalse(match("a*b*c", "aXXbYYbZ"))
        XCTAssertTrue(match("[abc", "[abc"), "an unclosed bracket is literal")
        XCTAssertTrue(match("é?", "éü"))
        XCTAssertTrue(match("[]]", "]"))
    }
}
