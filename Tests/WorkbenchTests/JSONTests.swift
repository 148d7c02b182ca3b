import Foundation
import XCTest
import Workbench

/// The one JSON type (`--json`, results.json, every Jupyter frame): parsing, serialization and their round trip,
/// checked against Foundation's JSONSerialization as an independent reader where the two must agree.
final class JSONTests: XCTestCase {
    func testParsesEveryKindOfValue() throws {
        let value = try JSON.parse(#" {"a": [1, -2.5e3, 0, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"} "#)
        XCTAssertEqual(value, ["a": [1, -2500.0, 0, true, false, nil], "s": "x\"\\/\u{8}\u{c}\n\r\té😀"])
    }

    func testSerializationKeepsMemberOrderAndUsesPythonsDefaultSeparators() throws {
        let value: JSON = ["b": "text/plain", "a": [1, 2.5, "é\n", nil, ["x": false]]]
        // json.dumps(value, ensure_ascii=False) in Python writes exactly this.
        XCTAssertEqual(value.serialized, #"{"b": "text/plain", "a": [1, 2.5, "é\n", null, {"x": false}]}"#)
        XCTAssertEqual(try JSON.parse(value.serialized), value)
        XCTAssertEqual(JSON.number(.nan).serialized, "null")
        XCTAssertEqual(JSON.string("\u{1}").serialized, #""\u0001""#)
        XCTAssertEqual(JSON.number(2000).serialized, "2000", "integral doubles print as the language prints them")
        XCTAssertEqual(JSON.strings(["z": "1", "a": "2"]).serialized, #"{"a": "2", "z": "1"}"#)
    }

    func testObjectsCompareWithoutOrderAndRepeatedKeysKeepTheLastValue() throws {
        XCTAssertEqual(try JSON.parse(#"{"a": 1, "b": 2}"#), try JSON.parse(#"{"b": 2, "a": 1}"#))
        XCTAssertNotEqual(try JSON.parse(#"{"a": 1, "b": 2}"#), try JSON.parse(#"{"a": 1, "b": 3}"#))
        XCTAssertNotEqual(JSON.array([1, 2]), JSON.array([2, 1]), "arrays keep their order")
        let repeated = try JSON.parse(#"{"k": 1, "j": 0, "k": 2}"#)
        XCTAssertEqual(repeated.objectValue?.count, 2)
        XCTAssertEqual(repeated["k"], 2)
        XCTAssertEqual(repeated.serialized, #"{"k": 2, "j": 0}"#)
        let wide = JSON.object((0..<50).map { ("k\($0)", .int($0)) })
        XCTAssertEqual(wide, .object((0..<50).reversed().map { ("k\($0)", .int($0)) }))
        XCTAssertEqual(JSON.int(3), JSON.number(3), "numbers compare by value")
        XCTAssertNotEqual(JSON.int(Int.max), JSON.number(0x1p63))
    }

    func testNumbersUnicodeAndEscapesRoundTrip() throws {
        let numbers: [JSON] = [.int(0), .int(-1), .int(Int.max), .int(Int.min), .number(0.1), .number(-2.5e-7),
                               .number(5e-324), .number(1.7976931348623157e308), .number(1e20), .number(123456.789)]
        for number in numbers {
            let text = number.serialized
            let back = try JSON.parse(text)
            XCTAssertEqual(back, number, text)
            // An independent reader sees the same number.
            let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) as? NSNumber
            XCTAssertEqual(foundation?.doubleValue, number.doubleValue, text)
        }
        XCTAssertEqual(try JSON.parse(String(Int.max)), .int(Int.max), "64-bit integers stay exact")
        let strings = ["", "plain", "é😀 combining e\u{301}", "tab\tnewline\nreturn\r", "quote\" backslash\\ slash/",
                       "\u{0}\u{1f}\u{7f}", "\u{2028}\u{2029}", "𝄞 outside the BMP", "日本語"]
        for string in strings {
            let text = JSON.string(string).serialized
            XCTAssertEqual(try JSON.parse(text), .string(string), text)
            XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) as? String,
                           string)
        }
        // Escapes as other writers spell them: \u for any character, surrogate pairs, \/ and \b \f.
        XCTAssertEqual(try JSON.parse(#""\u0041\u00e9\ud834\udd1e\/\b\f""#), .string("Aé𝄞/\u{8}\u{c}"))
    }

    func testRejectsMalformedInput() {
        let bad = ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"abc", "\"\\x\"", "\"\\ud800\"",
                   "\"a\nb\"", "{} x", "[1 2]", "nan", "{1:2}"]
        for text in bad {
            XCTAssertThrowsError(try JSON.parse(text), text) { error in
                XCTAssertTrue("\(error)".hasPrefix("invalid JSON at byte "), "\(error)")
            }
        }
        XCTAssertThrowsError(try JSON.parse([0x22, 0xFF, 0xFE, 0x22]), "invalid UTF-8 in a string")
    }

    func testNestingIsBoundedWithAClearError() {
        for open in ["[", "{\"a\":"] {
            let deep = String(repeating: open, count: 100_000)
            XCTAssertThrowsError(try JSON.parse(deep)) { error in
                XCTAssertEqual("\(error)", "invalid JSON at byte \(JSON.maximumDepth * open.utf8.count): nesting deeper than \(JSON.maximumDepth)")
            }
        }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertNoThrow(try JSON.parse(ok))
    }

    func testIntegersStayIntegers() throws {
        XCTAssertEqual(try JSON.parse("42"), .int(42))
        guard case .int = try JSON.parse("42") else { return XCTFail("42 parsed as a double") }
        XCTAssertEqual(try JSON.parse("42.0").intValue, 42)
        XCTAssertEqual(try JSON.parse("1e400"), .number(.infinity))
        XCTAssertEqual(try JSON.parse("99999999999999999999"), .number(1e20))
    }
}
