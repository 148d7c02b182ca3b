import Foundation
import XCTest
@testable import GPT2
import Tensor

final class TokenizerTests: XCTestCase {
    func testReferenceTextsEncodeToReferenceIds() throws {
        let tok = try Fixtures.tokenizer()
        for t in Fixtures.reference {
            XCTAssertEqual(tok.encode(t.text), t.ids, "text: \(t.text.debugDescription)")
        }
    }

    func testMinGPTExample() throws {
        let tok = try Fixtures.tokenizer()
        let text = "Hello!! I'm Andrej Karpathy. It's 2022. w00t :D 🤗"
        XCTAssertEqual(tok.encode(text), [15496, 3228, 314, 1101, 10948, 73, 509, 5117, 10036, 13, 632, 338, 33160, 13,
                                          266, 405, 83, 1058, 35, 12520, 97, 245])
    }

    func testBothFileSpellingsGiveTheSameTokenizer() throws {
        let openAI = try Fixtures.tokenizer()
        let hf = try Tokenizer.load(folder: Fixtures.tiny)  // vocab.json + merges.txt
        XCTAssertEqual(hf.vocabSize, 50257)
        XCTAssertEqual(openAI.vocabSize, 50257)
        for t in Fixtures.reference { XCTAssertEqual(hf.encode(t.text), t.ids) }
    }

    /// Splits checked against Python's `regex` module running GPT-2's own pattern (computed offline).
    func testPreTokenizerEdgeCases() throws {
        func pieces(_ s: String) -> [String] {
            var s = s
            var out: [String] = []
            s.withUTF8 { buf in PreTokenizer.split(buf) { out.append(String(decoding: buf[$0], as: UTF8.self)) } }
            return out
        }
        XCTAssertEqual(pieces("a  b"), ["a", " ", " b"])
        XCTAssertEqual(pieces("\n\nx"), ["\n", "\n", "x"])
        XCTAssertEqual(pieces("x \n\n y"), ["x", " \n\n", " y"])
        XCTAssertEqual(pieces("x  "), ["x", "  "])
        XCTAssertEqual(pieces("I'm you'RE it's 'll'x"), ["I", "'m", " you", "'", "RE", " it", "'s", " '", "ll", "'", "x"])
        XCTAssertEqual(pieces("e\u{301}t\u{301}"), ["e", "\u{301}", "t", "\u{301}"])  // combining marks are not letters
        XCTAssertEqual(pieces("a\u{0B}\u{0B}b\u{85}c"), ["a", "\u{0B}", "\u{0B}", "b", "\u{85}", "c"])
        XCTAssertEqual(pieces("12ab 3½"), ["12", "ab", " 3½"])
        XCTAssertEqual(pieces("hi!!! ?? x"), ["hi", "!!!", " ??", " x"])
        XCTAssertEqual(pieces("\u{3000}x\u{A0}y"), ["\u{3000}", "x", "\u{A0}", "y"])
    }

    func testEndOfTextLiteralIsOrdinaryText() throws {
        let tok = try Fixtures.tokenizer()
        let ids = tok.encode("a<|endoftext|>b")
        XCTAssertFalse(ids.contains(Tokenizer.endOfText))
        XCTAssertEqual(tok.decode(ids), "a<|endoftext|>b")
        XCTAssertEqual(tok.tokenBytes(Tokenizer.endOfText), Array("<|endoftext|>".utf8))
    }

    func testRoundTripOnRandomUnicode() throws {
        let tok = try Fixtures.tokenizer()
        let alphabet: [String] = ["a", "Z", " ", "  ", "\n", "\n\n", "\t", "\u{0B}", "\u{85}", "\u{A0}", "\u{3000}", "'s", "'",
                                  "e\u{301}", "🤗", "👩‍👩‍👧", "日本", "Ünï", "12", "½", "!?", "\r\n", "ـ", "ק", "\u{200B}", "<|endoftext|>"]
        var rng = RNG(seed: 7)
        for _ in 0..<300 {
            var s = ""
            for _ in 0..<(1 + rng.int(below: 12)) { s += alphabet[rng.int(below: alphabet.count)] }
            // and some random scalars from across the planes
            for _ in 0..<rng.int(below: 3) {
                if let u = Unicode.Scalar(UInt32(rng.int(below: 0x30000))) { s.unicodeScalars.append(u) }
            }
            let ids = tok.encode(s)
            // Bytes, not String ==, which would accept a canonically equivalent but differently normalized result.
            XCTAssertEqual(Array(tok.decode(ids).utf8), Array(s.utf8), "ids: \(ids)")
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < 50256 })
        }
        for t in Fixtures.reference { XCTAssertEqual(Array(tok.decode(tok.encode(t.text)).utf8), Array(t.text.utf8)) }
    }

    func testTokenStringIsReadable() throws {
        let tok = try Fixtures.tokenizer()
        XCTAssertEqual(tok.tokenString(198), "\\n")
        XCTAssertEqual(tok.tokenString(15496), "Hello")
        XCTAssertEqual(tok.tokenString(220), " ")
        XCTAssertEqual(tok.tokenString(12520), " \\xf0\\x9f")   // a space and the first half of an emoji
    }

    func testLLMCTokenizerFileEncodesTheSame() throws {
        let tok = try Fixtures.tokenizer()
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var data = Data()
        var header = [Int32](repeating: 0, count: 256)
        header[0] = 20240328; header[1] = 2; header[2] = Int32(tok.vocabSize); header[3] = 50256
        header.withUnsafeBytes { data.append(contentsOf: $0) }
        for id in 0..<tok.vocabSize {
            let b = tok.tokenBytes(Int32(id))
            data.append(UInt8(b.count)); data.append(contentsOf: b)
        }
        try data.write(to: URL(fileURLWithPath: dir + "/gpt2_tokenizer.bin"))
        let llmc = try Tokenizer.load(folder: dir)
        for t in Fixtures.reference { XCTAssertEqual(llmc.encode(t.text), t.ids) }
        XCTAssertEqual(llmc.encode("Hello!! I'm Andrej Karpathy. It's 2022. w00t :D 🤗"), tok.encode("Hello!! I'm Andrej Karpathy. It's 2022. w00t :D 🤗"))
    }

    func testHuggingFaceTokenizerJSONEncodesTheSame() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vocab = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.tiny + "/vocab.json")))
        let merges = try String(contentsOfFile: Fixtures.tiny + "/merges.txt", encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }  // newer files: [left, right]
        let json: [String: Any] = ["model": ["type": "BPE", "vocab": vocab, "merges": merges]]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        let tok = try Tokenizer.load(folder: dir)
        for t in Fixtures.reference { XCTAssertEqual(tok.encode(t.text), t.ids) }
    }

    func testBadTokenizerFilesGiveClearErrors() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertThrowsError(try Tokenizer.load(folder: dir)) { XCTAssertTrue("\($0)".contains("no tokenizer files"), "\($0)") }
        try "{\"a\": 0, \"b\": 5}".write(toFile: dir + "/vocab.json", atomically: true, encoding: .utf8)
        try "#version: 0.2\na b\n".write(toFile: dir + "/merges.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer.load(folder: dir)) { XCTAssertTrue("\($0)".contains("token 'b' has id 5"), "\($0)") }
    }
}
