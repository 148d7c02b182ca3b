import XCTest
@testable import JupyterKernel

final class JSONValueTests: XCTestCase {
    func testParsesEveryKindOfValue() throws {
        let value = try JSONValue.parse(#" {"a": [1, -2.5e3, 0, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"} "#)
        XCTAssertEqual(value, ["a": [1, -2500.0, 0, true, false, nil], "s": "x\"\\/\u{8}\u{c}\n\r\té😀"])
    }

    func testSerializationRoundTripsAndMatchesPythonCompactForm() throws {
        let value: JSONValue = ["b": "text/plain", "a": [1, 2.5, "é\n", nil, ["x": false]]]
        XCTAssertEqual(value.text, #"{"a":[1,2.5,"é\n",null,{"x":false}],"b":"text/plain"}"#)
        XCTAssertEqual(try JSONValue.parse(value.serialized()), value)
        XCTAssertEqual(JSONValue.double(.nan).text, "null")
        XCTAssertEqual(JSONValue.string("\u{1}").text, #""\u0001""#)
    }

    func testRejectsMalformedInput() {
        let bad = ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"abc", "\"\\x\"", "\"\\ud800\"",
                   "\"a\nb\"", "{} x", "[1 2]", "nan", "{1:2}"]
        for text in bad {
            XCTAssertThrowsError(try JSONValue.parse(text), text)
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0xFE, 0x22]), "invalid UTF-8 in a string")
    }

    func testNestingIsBoundedWithoutRecursionTrouble() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSONValue.parse(deep)) { error in
            XCTAssertTrue("\(error)".contains("nesting"))
        }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertNoThrow(try JSONValue.parse(ok))
    }

    func testIntegersStayIntegers() throws {
        XCTAssertEqual(try JSONValue.parse("42"), .int(42))
        XCTAssertEqual(try JSONValue.parse("42.0").intValue, 42)
        XCTAssertEqual(try JSONValue.parse("1e400"), .double(.infinity))
        XCTAssertEqual(try JSONValue.parse("99999999999999999999"), .double(1e20))
    }
}
