import Foundation
import XCTest
import GPT2
@testable import Activations

final class CorpusWindowTests: XCTestCase {
    /// A tokenizer whose ids are the letters' positions in the alphabet: easy to compute windows by hand.
    private func letters(_ s: String) -> [Int32] { s.unicodeScalars.map { Int32($0.value) - 96 } }

    func testWindowsFollowThePinnedRuleOnAHandComputedExample() throws {
        // Docs "ab", "cde", "f", "ghij" (E = 50256), T = 4: [E a b E] is full with the separator before "cde";
        // "cde" fills [E c d e] exactly, so "f" starts the next window with no separator after its BOS: [E f E g];
        // [E h i j]; nothing is left over.
        let E = endOfTextToken
        var windows = try ContextWindows(texts: ["ab", "cde", "f", "ghij"], contextLength: 4, tokenize: letters)
        let all = try windows.all()
        XCTAssertEqual(all.map(\.tokens), [[E, 1, 2, E], [E, 3, 4, 5], [E, 6, E, 7], [E, 8, 9, 10]])
        XCTAssertEqual(all.map(\.documentIndex), [[-1, 0, 0, -1], [-1, 1, 1, 1], [-1, 2, -1, 3], [-1, 3, 3, 3]])
        XCTAssertEqual(all.map(\.position), [[-1, 0, 1, -1], [-1, 0, 1, 2], [-1, 0, -1, 0], [-1, 1, 2, 3]])

        // tokens = 11 → ⌊11/4⌋ = 2 windows.
        var limited = try ContextWindows(texts: ["ab", "cde", "f", "ghij"], contextLength: 4, maxTokens: 11, tokenize: letters)
        XCTAssertEqual(try limited.all().map(\.tokens), [[E, 1, 2, E], [E, 3, 4, 5]])

        // Empty documents add nothing, not even a separator; the last partial window is dropped.
        var sparse = try ContextWindows(texts: ["", "ab", "", "c", "de"], contextLength: 4, tokenize: letters)
        XCTAssertEqual(try sparse.all().map(\.tokens), [[E, 1, 2, E], [E, 3, E, 4]])
    }

    /// The windows SAELens's `concat_and_batch_sequences` built from the same documents (tools/tlens/write_window_fixture.py),
    /// on cases where documents end exactly at window boundaries, are empty, or hold 50256 themselves.
    func testWindowsEqualSAELensConcatAndBatchSequences() throws {
        let url = Fixtures.repoRoot.appendingPathComponent("Tests/ActivationsTests/Fixtures/saelens_windows.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let cases = json["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 5)
        var naiveDiffers = 0
        for c in cases {
            let name = c["name"] as! String, T = (c["context"] as! NSNumber).intValue
            let docs = (c["documents"] as! [[NSNumber]]).map { $0.map { Int32($0.intValue) } }
            let expected = (c["windows"] as! [[NSNumber]]).map { $0.map { Int32($0.intValue) } }
            // Each text is its document's index; the tokenizer looks the ids up.
            var windows = try ContextWindows(texts: docs.indices.map(String.init), contextLength: T,
                                             tokenize: { docs[Int($0)!] })
            let got = try windows.all()
            XCTAssertEqual(got.map(\.tokens), expected, name)
            // Provenance: every non-marker token is its document's id at its position.
            for w in got {
                for i in 0..<T where w.documentIndex[i] >= 0 {
                    XCTAssertEqual(docs[Int(w.documentIndex[i])][Int(w.position[i])], w.tokens[i], name)
                }
                XCTAssertEqual(zip(w.tokens, w.documentIndex).filter { $0.1 < 0 }.map(\.0).allSatisfy { $0 == endOfTextToken }, true)
            }
            // The old rule (join with 50256, cut into T−1 pieces) differs on these cases: the fixture can tell them apart.
            let stream = docs.filter { !$0.isEmpty }.enumerated().flatMap { $0.offset == 0 ? $0.element : [endOfTextToken] + $0.element }
            let naive = stride(from: 0, to: stream.count - (T - 2), by: T - 1).map { [endOfTextToken] + stream[$0..<($0 + T - 1)] }
            if naive != expected { naiveDiffers += 1 }
        }
        XCTAssertEqual(naiveDiffers, 5)
    }

    func testALongDocumentSpansManyWindows() throws {
        let text = String(repeating: "abcdefghij", count: 1000)  // 10 000 tokens, one document
        var windows = try ContextWindows(texts: [text], contextLength: 8, tokenize: letters)
        let all = try windows.all()
        XCTAssertEqual(all.count, 10_000 / 7)
        XCTAssertEqual(all[100].tokens[1], Int32(700 % 10 + 1))
        XCTAssertEqual(all[100].position[1], 700)
    }

    func testTextCorpusSplitsOnBlankLinesAndJoinsLines() throws {
        let path = temporaryFolder(self, "corpus.txt")
        let text = "first line\nsecond line\n\n\n  \nnext doc\n\nlast\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Corpus(path: path).documents(), ["first line\nsecond line", "next doc", "last"])
        XCTAssertEqual(try Corpus(path: path, split: .line).documents(), ["first line", "second line", "next doc", "last"])
        XCTAssertEqual(try Corpus(path: path, split: .file).documents(), [text])
    }

    func testJSONLCorpusReadsTheChosenField() throws {
        let path = temporaryFolder(self, "corpus.jsonl")
        try "{\"text\": \"a\", \"body\": \"x\\ny\"}\n\n{\"text\": \"b\", \"body\": \"z\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Corpus(path: path).documents(), ["a", "b"])
        XCTAssertEqual(try Corpus(path: path, jsonField: "body").documents(), ["x\ny", "z"])
        XCTAssertThrowsMessage(try Corpus(path: path, jsonField: "title").documents(),
                               contains: ["line 1", "no string field 'title'", "body, text"])
    }

    func testFolderCorpusReadsTxtFilesAtAnyDepthInPathOrder() throws {
        let folder = temporaryFolder(self, "docs")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "two\n\nthree".write(toFile: folder + "/b.txt", atomically: true, encoding: .utf8)
        try "one".write(toFile: folder + "/a.txt", atomically: true, encoding: .utf8)
        try "ignored".write(toFile: folder + "/c.md", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: folder + "/a.dir/deeper", withIntermediateDirectories: true)
        try "nested".write(toFile: folder + "/a.dir/deeper/z.rst.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: folder + "/empty.txt", withIntermediateDirectories: true)
        // Path order: "a.dir/…" < "a.txt" < "b.txt"; a folder named like a text file is not read; by default each
        // file is one document, exactly as stored.
        XCTAssertEqual(try Corpus(path: folder).documents(), ["nested", "one", "two\n\nthree"])
        XCTAssertEqual(try Corpus(path: folder, split: .blank).documents(), ["nested", "one", "two", "three"])
    }

    func testCorpusErrorsNameTheProblem() throws {
        XCTAssertThrowsMessage(try Corpus(path: "/nonexistent/corpus.txt"), contains: ["/nonexistent/corpus.txt", "no such file"])
        let folder = temporaryFolder(self, "no-text")
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        try "x".write(toFile: folder + "/sub/notes.md", atomically: true, encoding: .utf8)
        XCTAssertThrowsMessage(try Corpus(path: folder).documents(), contains: [folder, "holds no .txt files", "subfolders"])
        XCTAssertThrowsMessage(try ContextWindows(texts: ["a"], contextLength: 1, tokenize: letters), contains: ["at least 2"])
        let jsonl = temporaryFolder(self, "c.jsonl")
        try "{\"text\": \"a\"}\n".write(toFile: jsonl, atomically: true, encoding: .utf8)
        XCTAssertThrowsMessage(try Corpus(path: jsonl, split: .line), contains: [jsonl, "split=line", "one document per record"])
    }

    func testWindowsFromARealTokenizerStartWithBOS() throws {
        let tokenizer = try Tokenizer.load(folder: Fixtures.tinyModel)
        let texts = try Fixtures.referenceTexts()
        var windows = try ContextWindows(texts: texts.map(\.text), contextLength: 16, tokenize: { tokenizer.encode($0) })
        let all = try windows.all()
        let stream = texts[0].ids + [endOfTextToken] + texts[1].ids + [endOfTextToken] + texts[2].ids
        XCTAssertEqual(all.count, stream.count / 15)
        for (w, window) in all.enumerated() {
            XCTAssertEqual(window.tokens, [endOfTextToken] + stream[(w * 15)..<(w * 15 + 15)])
        }
    }
}
