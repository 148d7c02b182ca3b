import Foundation
import XCTest
import Tensor
@testable import Activations

/// Paths of the shared fixtures: the repo root is three levels up from this file, `shared/` sits beside it.
enum Fixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let data = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
    static let tinyModel = data.appendingPathComponent("gpt2-tiny").path
    static let reference = data.appendingPathComponent("gpt2-tiny/reference.safetensors").path
    static let referenceJSON = data.appendingPathComponent("gpt2-tiny/reference.json").path

    /// The reference texts: text, ids, CE and zero-ablation figures of blocks.1.hook_mlp_out.
    struct ReferenceText { let text: String; let ids: [Int32]; let ce: Double; let zeroCE: Double; let zeroKL: Double }
    static func referenceTexts() throws -> [ReferenceText] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: referenceJSON))) as! [String: Any]
        return (json["texts"] as! [[String: Any]]).map { t in
            let zero = t["zero_ablate_blocks.1.hook_mlp_out"] as! [String: Any]
            return ReferenceText(text: t["text"] as! String, ids: (t["ids"] as! [NSNumber]).map { Int32($0.intValue) },
                                 ce: (t["ce_loss"] as! NSNumber).doubleValue, zeroCE: (zero["ce_loss"] as! NSNumber).doubleValue,
                                 zeroKL: (zero["kl_clean_to_patched"] as! NSNumber).doubleValue)
        }
    }
}

/// A fresh temporary folder removed when the test ends.
func temporaryFolder(_ test: XCTestCase, _ name: String = "store") -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-act-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir.appendingPathComponent(name).path
}

/// Deterministic synthetic activations: row r of hook h is a pseudo-random vector with a known seed, and its first
/// column is the row index (so shuffled rows can be traced back).
func syntheticRows(hook: Int, rows: Range<Int>, d: Int) -> Matrix {
    var m = Matrix(rows: rows.count, cols: d)
    for (i, r) in rows.enumerated() {
        var rng = RNG(seed: UInt64(r * 131 + hook * 7 + 1))
        for c in 0..<d { m[i, c] = rng.normal() * Float(1 + hook) }
        m[i, 0] = Float(r)
    }
    return m
}

/// Writes a store of `rows` rows, two hooks of widths `dims`, token ids = row % 50 with BOS every `window` rows.
@discardableResult
func makeSyntheticStore(at folder: String, rows: Int, dims: [Int] = [8, 5], dtype: StoreDType = .f32,
                        shardRows: Int = 37, window: Int = 10, appendPiece: Int = 23) throws -> ActivationStore {
    let hooks = dims.enumerated().map { StoreHook(name: "blocks.\($0.offset).hook_mlp_out", layer: $0.offset, d: $0.element) }
    let writer = try ActivationStoreWriter(folder: folder, model: "synthetic", hooks: hooks, dtype: dtype,
                                           contextLength: window, shardRows: shardRows)
    var start = 0
    while start < rows {
        let range = start..<min(rows, start + appendPiece)
        let ids = range.map { $0 % window == 0 ? endOfTextToken : Int32($0 % 50) }
        try writer.append(dims.enumerated().map { syntheticRows(hook: $0.offset, rows: range, d: $0.element) },
                          tokenIds: ids, documentIndex: range.map { Int32($0 / 100) }, positions: range.map { Int32($0 % 100) })
        start = range.upperBound
    }
    try writer.finish()
    return try ActivationStore(path: folder)
}

func XCTAssertThrowsMessage(_ body: @autoclosure () throws -> Any, contains fragments: [String],
                            file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch {
        let text = "\(error)"
        for f in fragments where !text.contains(f) {
            XCTFail("error '\(text)' does not contain '\(f)'", file: file, line: line)
        }
    }
}
