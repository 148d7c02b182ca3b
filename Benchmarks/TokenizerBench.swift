import Foundation
import GPT2
import Tensor

/// Tokenizer throughput on one thread over a few MB of English and code: Python's documentation sources when
/// installed, plus this repository's Swift sources. Peer: tiktoken ≈ 10 MB/s on one thread on this machine kind.
func runTokenizerBench(_ options: BenchOptions) throws {
    let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    let tokenizerFolder = repoRoot.appendingPathComponent("../shared/data/gpt2-tokenizer").standardizedFileURL.path
    let tokenizer = try Tokenizer.load(folder: tokenizerFolder)
    let limit = options.quick ? 1 << 20 : 6 << 20
    var docs: [String] = []
    var bytes = 0
    for folder in ["/usr/share/doc/python3.11/html/_sources", "/usr/share/doc", repoRoot.appendingPathComponent("Sources").path] {
        guard let e = FileManager.default.enumerator(atPath: folder) else { continue }
        while let rel = e.nextObject() as? String, bytes < limit {
            guard rel.hasSuffix(".txt") || rel.hasSuffix(".swift") || rel.hasSuffix(".rst") || rel.hasSuffix(".md") else { continue }
            guard let s = try? String(contentsOfFile: folder + "/" + rel, encoding: .utf8) else { continue }
            docs.append(s); bytes += s.utf8.count
        }
        if bytes >= limit { break }
    }
    guard bytes > 0 else { throw GPT2Error("tokenizer benchmark: found no text files") }
    var tokens = 0
    let cold = medianSeconds(warmup: 0, repeats: 1) { tokens = docs.reduce(0) { $0 + tokenizer.encode($1).count } }
    let warm = medianSeconds(warmup: 0, repeats: options.quick ? 1 : 3) { _ = docs.reduce(0) { $0 + tokenizer.encode($1).count } }
    let mb = Double(bytes) / 1e6
    let extra: [String: Any] = ["mb": (mb * 10).rounded() / 10, "docs": docs.count, "tokens_per_byte": (Double(tokens) / Double(bytes) * 1000).rounded() / 1000]
    BenchResult(bench: "tokenizer", caseName: "encode, 1 thread, first pass", metric: "mb_per_s", value: mb / cold, extra: extra).emit(options)
    BenchResult(bench: "tokenizer", caseName: "encode, 1 thread, piece cache warm", metric: "mb_per_s", value: mb / warm, extra: extra).emit(options)
}
