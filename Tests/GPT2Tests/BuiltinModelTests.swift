import Foundation
import XCTest
import GPT2
import Tensor

/// The built-in GPT-2 (models/builtin-gpt2), trained by tools/builtin_model/train.py. The training tool evaluated
/// the shipped float16 weights on `validation_slice.npy` (the first 64 windows of held-out files, 128 tokens each,
/// BOS first) and wrote the mean next-token CE over all 64·127 predictions into training.json and the model card;
/// nsae must reproduce that figure on the same tokens.
final class BuiltinModelTests: XCTestCase {
    static let folder = Fixtures.repoRoot.appendingPathComponent("models/builtin-gpt2").path

    func testValidationCrossEntropyMatchesTheModelCard() throws {
        let model = try GPT2Model.load(path: Self.folder)
        XCTAssertEqual(model.config.nLayer, 4)
        XCTAssertEqual(model.config.nEmbd, 128)
        XCTAssertEqual(model.config.vocabSize, 50257)

        let card = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.folder + "/training.json"))) as! [String: Any]
        let expected = (card["validation_ce"] as! NSNumber).doubleValue

        let slice = try Npy.read(path: Self.folder + "/validation_slice.npy")
        XCTAssertEqual(slice.shape, [64, 128])
        let tokens = slice.floats.map { Int32($0) }
        let (windows, T) = (slice.shape[0], slice.shape[1])
        XCTAssertTrue((0..<windows).allSatisfy { tokens[$0 * T] == 50256 }, "every window starts with BOS")

        var sum = 0.0
        let batch = 8
        for start in stride(from: 0, to: windows, by: batch) {
            let ids = Array(tokens[(start * T)..<((start + batch) * T)])
            let logits = try XCTUnwrap(model.forward(tokens: ids, batch: batch, seqLen: T).logits)
            sum += try Losses.crossEntropy(logits: logits, tokens: ids, batch: batch, seqLen: T).reduce(0) { $0 + Double($1) }
        }
        let ce = sum / Double(windows * (T - 1))
        XCTAssertEqual(ce, expected, accuracy: 1e-3 * expected, "nsae's CE \(ce) vs the model card's \(expected)")

        let readme = try String(contentsOfFile: Self.folder + "/README.md", encoding: .utf8)
        XCTAssertTrue(readme.contains(String(format: "%.4f", expected)), "the model card states the validation CE")
    }

    func testBuiltinTokenizerIsGPT2s() throws {
        let model = try GPT2Model.load(path: Self.folder)
        let reference = try Fixtures.tokenizer()
        let text = "def parse(argv):\n    \"\"\"Return the options.\"\"\"  # 3.11 — naïve"
        XCTAssertEqual(try XCTUnwrap(model.tokenizer).encode(text), reference.encode(text))
    }
}
