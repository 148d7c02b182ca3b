import Foundation
import XCTest
@testable import GPT2
import Tensor

/// Checkpoint and tokenizer files crafted to make size arithmetic wrap, or damaged: errors that name the file and
/// the field, never a crash, and never a damaged tokenizer taken for "no tokenizer".
final class CraftedCheckpointTests: XCTestCase {
    /// An llm.c header with the given [maxT, V, L, NH, C, Vp] and `extra` bytes of body.
    func llmcFile(_ dims: [Int32], extra: Int = 4096) throws -> String {
        var header = [Int32](repeating: 0, count: 256)
        header[0] = 20240326; header[1] = 3
        for (i, v) in dims.enumerated() { header[2 + i] = v }
        var data = header.withUnsafeBytes { Data($0) }
        data.append(Data(count: extra))
        let dir = try Fixtures.tempDir()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/crafted.bin"
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func testLLMCHeadersWhoseSizesWouldWrapAreRefused() throws {
        let cases: [([Int32], String)] = [
            ([1024, 50257, 12, 12, Int32.max, 50304], "n_embd is 2147483647"),
            ([1024, 50257, -3, 12, 768, 50304], "n_layer is -3"),
            ([Int32.max, 50257, 12, 12, 768, 50304], "n_positions is 2147483647"),
            ([1024, 50257, 12, 12, 768, Int32.max], "padded vocabulary 2147483647"),
            ([1024, 50257, 12, 12, 768, 50304], "expected"),   // plausible sizes, but the body is missing: truncated
        ]
        for (dims, fragment) in cases {
            let path = try llmcFile(dims)
            XCTAssertThrowsError(try GPT2Model.load(path: path)) { error in
                XCTAssertTrue("\(error)".contains(fragment) && "\(error)".contains(path), "\(dims): \(error)")
            }
        }
    }

    func testALLMCTokenizerWithANegativeCountIsRefused() throws {
        var header = [Int32](repeating: 0, count: 256)
        header[0] = 20240328; header[1] = 2; header[2] = -5
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try header.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: dir + "/gpt2_tokenizer.bin"))
        XCTAssertThrowsError(try Tokenizer.load(folder: dir)) { XCTAssertTrue("\($0)".contains("token count -5"), "\($0)") }
    }

    func testADamagedVocabularyIsAnErrorNotAMissingTokenizer() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tiny = Fixtures.data.appendingPathComponent("gpt2-tiny").path
        for f in ["config.json", "model.safetensors", "merges.txt"] {
            try FileManager.default.copyItem(atPath: tiny + "/" + f, toPath: dir + "/" + f)
        }
        try "{\"Hello\": 0, ".write(toFile: dir + "/vocab.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GPT2Model.load(path: dir)) { error in
            XCTAssertTrue("\(error)".contains("vocab.json") && "\(error)".contains("not valid JSON"), "\(error)")
        }
        try "{\"Hello\": 16.5}".write(toFile: dir + "/vocab.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GPT2Model.load(path: dir)) { error in
            XCTAssertTrue("\(error)".contains("token 'Hello' has id 16.5"), "\(error)")
        }
        // No tokenizer files at all is not an error: the model loads without one.
        for f in ["vocab.json", "merges.txt"] { try FileManager.default.removeItem(atPath: dir + "/" + f) }
        XCTAssertNil(try GPT2Model.load(path: dir).tokenizer)
    }

    func testConfigSizesMustBeWholeNumbersInRange() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (json, fragment) in [("{\"n_layer\": 2, \"n_head\": 4, \"n_embd\": 16.7}", "16.7 is not a whole number"),
                                 ("{\"n_layer\": 2, \"n_head\": 4, \"n_embd\": 1e30}", "not a whole number"),
                                 ("{\"n_layer\": 100000, \"n_head\": 4, \"n_embd\": 32}", "n_layer is 100000")] {
            try json.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try GPT2Config.load(path: dir + "/config.json")) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(json): \(error)")
            }
        }
    }
}
