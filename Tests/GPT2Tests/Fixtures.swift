import Foundation
import XCTest
@testable import GPT2
import Tensor

/// Paths to the shared fixtures: the repo root is three levels above this file, `shared/` sits beside it.
enum Fixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let data = repoRoot.appendingPathComponent("../shared/data").standardizedFileURL
    static let tiny = data.appendingPathComponent("gpt2-tiny").path
    static let tokenizerFolder = data.appendingPathComponent("gpt2-tokenizer").path

    struct Text { let text: String; let ids: [Int32]; let ce: Double; let zeroCE: Double; let zeroKL: Double }

    static let reference: [Text] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: tiny + "/reference.json"))
        let obj = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (obj["texts"] as! [[String: Any]]).map { t in
            let z = t["zero_ablate_blocks.1.hook_mlp_out"] as! [String: Any]
            return Text(text: t["text"] as! String, ids: (t["ids"] as! [NSNumber]).map { Int32($0.intValue) },
                        ce: (t["ce_loss"] as! NSNumber).doubleValue, zeroCE: (z["ce_loss"] as! NSNumber).doubleValue,
                        zeroKL: (z["kl_clean_to_patched"] as! NSNumber).doubleValue)
        }
    }()

    nonisolated(unsafe) private static var cachedTokenizer: Tokenizer?
    nonisolated(unsafe) private static var cachedModel: GPT2Model?
    private static let lock = NSLock()

    /// One tokenizer for all tests (loading it takes a moment in debug builds).
    static func tokenizer() throws -> Tokenizer {
        lock.lock(); defer { lock.unlock() }
        if let t = cachedTokenizer { return t }
        let t = try Tokenizer.load(folder: tokenizerFolder)
        cachedTokenizer = t
        return t
    }

    static func tinyModel() throws -> GPT2Model {
        lock.lock(); defer { lock.unlock() }
        if let m = cachedModel { return m }
        let m = try GPT2Model.load(path: tiny)
        cachedModel = m
        return m
    }

    static func referenceFile() throws -> SafeTensorsFile { try SafeTensorsFile(path: tiny + "/reference.safetensors") }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "sizes differ: \(a.count) vs \(b.count)")
        var m: Float = 0
        for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    static func tempDir() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("gpt2tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}
