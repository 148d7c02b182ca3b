import Foundation
import XCTest
import GPT2
@testable import Activations

final class CorpusWindowTests: XCTestCase {
    /// A tokenizer whose ids are the letters' positions in the alphabet: easy to compute windows by hand.
    private func letters(_ s: String) -> [Int32] { s.unicodeScalars.map { Int32($0.value) - 96 } }

    func testWindowsFollowThePinnedRuleOnAHandComputedExample() throws {
        // Docs "ab", "cde", "f", "ghij" → stream a b E c d e E f E g h i j (E = 50256, 13 tokens).
        // T = 4: pieces of 3: [a b E] [c d e] [E f E] [g h i], j dropped; each piece gets a leading E.
        let E = endOfTextToken
        var windows = try ContextWindows(texts: ["ab", "cde", "f", "ghij"], contextLength: 4, tokenize: letters)
        let all = try windows.all()
        XCTAssertEqual(all.map(\.tokens), [[E, 1, 2, E], [E, 3, 4, 5], [E, E, 6, E], [E, 7, 8, 9]])
        XCTAssertEqual(all.map(\.documentIndex), [[-1, 0, 0, -1], [-1, 1, 1, 1], [-1, -1, 2, -1], [-1, 3, 3, 3]])
        XCTAssertEqual(all.map(\.position), [[-1, 0, 1, -1], [-1, 0, 1, 2], [-1, -1, 0, -1], [-1, 0, 1, 2]])

        // tokens = 11 → ⌊11/4⌋ = 2 windows.
        var limited = try ContextWindows(texts: ["ab", "cde", "f", "ghij"], contextLength: 4, maxTokens: 11, tokenize: letters)
        XCTAssertEqual(try limited.all().map(\.tokens), [[E, 1, 2, E], [E, 3, 4, 5]])
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
        try "first line\nsecond line\n\n\n  \nnext doc\n\nlast\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Corpus(path: path).documents(), ["first line\nsecond line", "next doc", "last"])
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
        // Path order: "a.dir/…" < "a.txt" < "b.txt"; a folder named like a text file is not read.
        XCTAssertEqual(try Corpus(path: folder).documents(), ["nested", "one", "two", "three"])
    }

    func testCorpusErrorsNameTheProblem() throws {
        XCTAssertThrowsMessage(try Corpus(path: "/nonexistent/corpus.txt"), contains: ["/nonexistent/corpus.txt", "no such file"])
        let folder = temporaryFolder(self, "no-text")
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        try "x".write(toFile: folder + "/sub/notes.md", atomically: true, encoding: .utf8)
        XCTAssertThrowsMessage(try Corpus(path: folder).documents(), contains: [folder, "holds no .txt files", "subfolders"])
        XCTAssertThrowsMessage(try ContextWindows(texts: ["a"], contextLength: 1, tokenize: letters), contains: ["at least 2"])
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
