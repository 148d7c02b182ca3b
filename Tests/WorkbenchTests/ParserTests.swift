import XCTest
@testable import Workbench

final class ParserTests: XCTestCase {
    private func parse(_ source: String, verbs: Set<String> = ["help", "vars", "train", "load"]) throws -> [Statement] {
        var parser = Parser(source, isVerb: { verbs.contains($0) })
        return try parser.parseAll()
    }

    private func parseError(_ source: String, file: StaticString = #filePath, line: UInt = #line) -> LanguageError? {
        do {
            _ = try parse(source)
            XCTFail("expected a syntax error in \(source)", file: file, line: line)
        } catch let error as LanguageError {
            return error
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
        return nil
    }

    private func value(_ source: String) throws -> Expr? {
        guard case .value(let e)? = try parse(source).first?.body else { return nil }
        return e.value
    }

    func testNumbersWithSuffixesAndExponents() throws {
        XCTAssertEqual(try value("2k"), .number(2000))
        XCTAssertEqual(try value("2M"), .number(2_000_000))
        XCTAssertEqual(try value("1G"), .number(1e9))
        XCTAssertEqual(try value("1.5k"), .number(1500))
        XCTAssertEqual(try value("1e-3"), .number(0.001))
        XCTAssertEqual(try value("-2.5"), .number(-2.5))
        XCTAssertEqual(try value("2.5E+2"), .number(250))
        XCTAssertEqual(try value(".5"), .number(0.5))
    }

    func testStringsWithEscapes() throws {
        XCTAssertEqual(try value(#""a\"b\\c\nd\te""#), .string("a\"b\\c\nd\te"))
        XCTAssertEqual(try value(#""héllo ✓""#), .string("héllo ✓"))
    }

    func testRangesListsBooleansNames() throws {
        XCTAssertEqual(try value("0..11"), .range(0, 11))
        guard case .list(let items)? = try value("[0, 3, 5]") else { return XCTFail("not a list") }
        XCTAssertEqual(items.map(\.value), [.number(0), .number(3), .number(5)])
        XCTAssertEqual(try value("[]"), .list([]))
        XCTAssertEqual(try value("true"), .bool(true))
        XCTAssertEqual(try value("false"), .bool(false))
        XCTAssertEqual(try value("acts"), .name("acts"))
    }

    func testCommandWithBindingArgumentsAndOptions() throws {
        let statements = try parse("acts = harvest gpt2 web hook=mlp_out layers=0..11 tokens=2M out=\"acts/x\"")
        XCTAssertEqual(statements.count, 1)
        let s = statements[0]
        XCTAssertEqual(s.target?.value, "acts")
        guard case .command(let verb, let arguments, let options) = s.body else { return XCTFail("not a command") }
        XCTAssertEqual(verb.value, "harvest")
        XCTAssertEqual(verb.position.column, 8)
        XCTAssertEqual(arguments.map(\.value), [.name("gpt2"), .name("web")])
        XCTAssertEqual(options.map(\.key.value), ["hook", "layers", "tokens", "out"])
        XCTAssertEqual(options.map(\.value.value), [.name("mlp_out"), .range(0, 11), .number(2e6), .string("acts/x")])
        XCTAssertEqual(options[1].key.position.column, 38)
    }

    func testSingleNameIsAVerbOnlyWhenItIsOne() throws {
        guard case .command(let verb, _, _)? = try parse("help").first?.body else { return XCTFail("help is a command") }
        XCTAssertEqual(verb.value, "help")
        guard case .value? = try parse("x").first?.body else { return XCTFail("x is a value") }
    }

    func testCommentsBlankLinesAndContinuation() throws {
        let source = """
        # a comment

        x = 1   # trailing comment
        train a b \\
            steps=10 \\
            lr=1e-3
        y = "#not a comment"
        """
        let statements = try parse(source)
        XCTAssertEqual(statements.map(\.line), [3, 4, 7])
        guard case .command(_, _, let options) = statements[1].body else { return XCTFail("not a command") }
        XCTAssertEqual(options.map(\.key.value), ["steps", "lr"])
        XCTAssertEqual(options[0].key.position.line, 5)
        guard case .value(let v) = statements[2].body else { return XCTFail("not a value") }
        XCTAssertEqual(v.value, .string("#not a comment"))
    }

    func testNumbersPrintShortestRoundTripIntegersWithoutPoint() {
        XCTAssertEqual(formatNumber(2000), "2000")
        XCTAssertEqual(formatNumber(0.001), "0.001")
        XCTAssertEqual(formatNumber(-2.5), "-2.5")
        XCTAssertEqual(formatNumber(0.1 + 0.2), "0.30000000000000004")
        XCTAssertEqual(formatNumber(1e20), "1e+20")
        XCTAssertEqual(formatNumber(2e6), "2000000")
        for v in [0.1, 1.0 / 3, 123.456, 6.02e23, 1e-300, -7.25e-9] {
            XCTAssertEqual(Double(formatNumber(v)), v, "round trip of \(v)")
        }
    }

    func testErrorPositionsCaretsAndExpectations() throws {
        let unterminated = try XCTUnwrap(parseError("x = 1\ny = \"abc"))
        XCTAssertEqual(unterminated.position.line, 2)
        XCTAssertEqual(unterminated.position.column, 5)
        XCTAssertEqual(unterminated.kind, .incomplete)
        XCTAssertEqual(unterminated.rendered(in: "x = 1\ny = \"abc"),
                       "error at line 2, column 5: unterminated string; expected a closing `\"`\n  y = \"abc\n      ^")

        let list = try XCTUnwrap(parseError("train a layers=[1, 2 3]"))
        XCTAssertEqual(list.position.column, 22)
        XCTAssertTrue(list.message.contains("expected `,` or `]`"), list.message)

        let badSuffix = try XCTUnwrap(parseError("x = 2kb"))
        XCTAssertEqual(badSuffix.position.column, 7)
        XCTAssertTrue(badSuffix.message.contains("suffixes are k"), badSuffix.message)

        let missingValue = try XCTUnwrap(parseError("train a steps="))
        XCTAssertEqual(missingValue.position.column, 15)
        XCTAssertTrue(missingValue.message.contains("expected a value after `steps=`"), missingValue.message)

        let badEscape = try XCTUnwrap(parseError(#"echo "a\qb""#))
        XCTAssertEqual(badEscape.position.column, 8)

        let emptyRange = try XCTUnwrap(parseError("x = 5..2"))
        XCTAssertTrue(emptyRange.message.contains("empty"), emptyRange.message)

        let strayCharacter = try XCTUnwrap(parseError("x = 1 $"))
        XCTAssertEqual(strayCharacter.position.column, 7)

        let argumentAfterOption = try XCTUnwrap(parseError("train a steps=3 b"))
        XCTAssertEqual(argumentAfterOption.position.column, 17)

        let dangling = try XCTUnwrap(parseError("train a \\"))
        XCTAssertEqual(dangling.kind, .incomplete)

        let twoValues = try XCTUnwrap(parseError("x = 1 2"))
        XCTAssertEqual(twoValues.position.column, 7)
    }

    /// One rule for where a statement ends: strings may span lines and a newline inside `[…]` is a blank, so the
    /// parser accepts exactly what is_complete waits for.
    func testStringsAndListsSpanLines() throws {
        var parser = Parser("echo \"abc\ndef\"\nx = [1,\n  2, # two\n  3]\ny = 4", isVerb: { $0 == "echo" })
        let statements = try parser.parseAll()
        XCTAssertEqual(statements.count, 3)
        guard case .command(_, let arguments, _) = statements[0].body else { return XCTFail("echo is a command") }
        XCTAssertEqual(arguments.map(\.value), [.string("abc\ndef")])
        guard case .value(let list) = statements[1].body, case .list(let items) = list.value else { return XCTFail("a list") }
        XCTAssertEqual(items.map(\.value), [.number(1), .number(2), .number(3)])
        XCTAssertEqual(statements[1].line, 3)
        XCTAssertEqual(statements[2].line, 6)

        XCTAssertEqual(parseError("x = [1, 2")?.kind, .incomplete)
        XCTAssertEqual(parseError("x = [1, 2,")?.kind, .incomplete)
        XCTAssertEqual(parseError("x = [[1], [2")?.kind, .incomplete)
        XCTAssertEqual(parseError("echo \"abc\ndef")?.kind, .incomplete)
        // A list that a later line cannot close is invalid: the newline did not end it, so `y` is inside it.
        XCTAssertEqual(parseError("x = [1, 2\ny = 3]")?.kind, .syntax)
        XCTAssertEqual(parseError("x = [1 2]")?.kind, .syntax)
    }

    func testColumnsCountUnicodeScalarsNotBytes() throws {
        let error = try XCTUnwrap(parseError("x = \"é😀\" $"))
        XCTAssertEqual(error.position.column, 10)
        XCTAssertEqual(error.position.offset, 13, "the offset is in UTF-8 bytes")
        XCTAssertTrue(error.message.contains("unexpected character `$`"), error.message)
    }

    func testTabsAreShownAsSpacesSoTheCaretLinesUp() throws {
        let error = try XCTUnwrap(parseError("\tx = \"abc"))
        XCTAssertEqual(error.rendered(in: "\tx = \"abc").split(separator: "\n").last, "       ^")
    }

    func testEditDistanceSuggestions() {
        XCTAssertEqual(editDistance("trian", "train"), 1)
        XCTAssertEqual(editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(nearest("trian", in: ["train", "tokenize", "top"]), "train")
        XCTAssertEqual(nearest("expansoin", in: ["expansion", "alpha"]), "expansion")
        XCTAssertNil(nearest("zzzzzz", in: ["train", "eval"]))
    }
}
