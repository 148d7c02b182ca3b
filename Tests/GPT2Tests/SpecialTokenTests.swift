import Foundation
import XCTest
@testable import GPT2

/// `encode(_:special:)` against Hugging Face's GPT-2 tokenizer on texts holding the literal `<|endoftext|>`
/// (Fixtures/special_tokens.json, tools/tlens/write_special_fixture.py): 50256 with special, text without.
final class SpecialTokenTests: XCTestCase {
    func testEndOfTextLiteralMapsAsHuggingFaceOnlyWhenAsked() throws {
        let url = Fixtures.repoRoot.appendingPathComponent("Tests/GPT2Tests/Fixtures/special_tokens.json")
        let cases = (try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any])["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 7)
        let tokenizer = try Fixtures.tokenizer()
        for c in cases {
            let text = c["text"] as! String
            let special = (c["special"] as! [NSNumber]).map { Int32($0.intValue) }
            let ordinary = (c["ordinary"] as! [NSNumber]).map { Int32($0.intValue) }
            XCTAssertEqual(tokenizer.encode(text, special: true), special, text)
            XCTAssertEqual(tokenizer.encode(text, special: false), ordinary, text)
            XCTAssertEqual(tokenizer.encode(text), ordinary, "the default reads the literal as text: \(text)")
        }
    }
}
