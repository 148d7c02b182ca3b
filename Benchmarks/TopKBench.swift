import Foundation
import Tensor
import SAE
import Activations

/// Top-k scan rate for all features of a 768→12288 ReLU SAE over a store (encode each chunk, keep the top 20 per
/// feature, densities and histograms), with the encoder bias set so about 1% of features fire (a realistic L0).
/// Also reports peak RSS against the store size: the scan holds one chunk, not the store.
func runTopKBench(_ options: BenchOptions) throws {
    BLAS.setThreads(2)
    let d = 768, m = 12288
    let rows = options.quick ? 4096 : 32768
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-topk-bench-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    var rng = RNG(seed: 3)
    let writer = try ActivationStoreWriter(folder: root, model: "synthetic", hooks: [StoreHook(name: "blocks.6.hook_mlp_out", layer: 6, d: d)],
                                           dtype: .f32, contextLength: 128)
    for start in stride(from: 0, to: rows, by: 1024) {
        let ids = (start..<(start + 1024)).map { $0 % 128 == 0 ? endOfTextToken : Int32($0 % 50000) }
        try writer.append([rng.normalMatrix(1024, d)], tokenIds: ids)
    }
    try writer.finish()
    let store = try ActivationStore(path: root)

    let sae = try SAERegistry.make("relu", dIn: d, dSAE: m, alpha: 0.001, seed: 4)
    // Pre-activations are ~N(0, s²) per feature; a bias of −2.33·s leaves ~1% of them positive.
    let probe = try store.matrix(hook: 0, rows: 0..<256)
    let pre = BLAS.matmul(probe, sae.W_enc)
    let s = (pre.data.map { Double($0 * $0) }.reduce(0, +) / Double(pre.count)).squareRoot()
    try sae.setParameters(b_enc: [Float](repeating: Float(-2.33 * s), count: m))

    // SAE.encode alone over the same chunks, for comparison: the scan itself uses the codes-only GEMM encoder
    // (SAE.encode also reconstructs, which a scan does not need).
    let encodeStart = DispatchTime.now().uptimeNanoseconds
    for chunkStart in stride(from: 0, to: rows, by: 1024) {
        _ = try sae.encode(try store.matrix(hook: 0, rows: chunkStart..<min(rows, chunkStart + 1024)))
    }
    let encodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - encodeStart) / 1e9

    var scanOptions = TopActivations.Options()
    scanOptions.k = 20
    scanOptions.chunkRows = 1024
    let start = DispatchTime.now().uptimeNanoseconds
    let summaries = try TopActivations.scan(store: store, hook: 0, sae: sae, options: scanOptions)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let l0 = summaries.map(\.density).reduce(0, +)
    BenchResult(bench: "topk", caseName: "relu 768x12288 all features k20 over \(rows) tokens", metric: "tokens_per_s",
                value: Double(summaries[0].tokensScanned) / seconds,
                extra: ["l0": (l0 * 10).rounded() / 10, "encode_only_tokens_per_s": (Double(rows) / encodeSeconds).rounded(), "store_mb": (rows * d * 4) >> 20]).emit(options)
}
