import Foundation
import Tensor
import GPT2
import Activations

/// Harvest throughput for GPT-2 small shapes (random weights): hook_mlp_out at all 12 layers, context 128, batch 8,
/// body only, including writing the store (f32 and f16). Goal ≥ 1100 tokens/s; the PyTorch peer's body-only forward
/// alone does ~900 tokens/s on this machine (../shared/peers).
func runHarvestBench(_ options: BenchOptions) throws {
    BLAS.setThreads(2)
    let model = try GPT2Model.random(config: .small, seed: 1)
    let T = 128, B = 8
    let windowCount = options.quick ? 16 : 64
    var rng = RNG(seed: 2)
    let windows = (0..<windowCount).map { _ in
        TokenWindow(tokens: [endOfTextToken] + (1..<T).map { _ in Int32(rng.int(below: 50256)) })
    }
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-harvest-bench-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    // Warm-up: one batch, so first-touch page faults of the weights are not timed.
    var warm = Harvester.Options(layers: Array(0..<12))
    warm.batchSize = B
    try Harvester.harvest(model: model, windows: Array(windows.prefix(B)), to: root + "/warm", options: warm)
    for dtype in [StoreDType.f32, .f16] {
        var harvestOptions = Harvester.Options(layers: Array(0..<12))
        harvestOptions.kind = .mlpOut
        harvestOptions.contextLength = T
        harvestOptions.batchSize = B
        harvestOptions.dtype = dtype
        let folder = root + "/\(dtype.rawValue)"
        let start = DispatchTime.now().uptimeNanoseconds
        let store = try Harvester.harvest(model: model, windows: windows, to: folder, options: harvestOptions)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let tokens = Double(store.tokenCount)
        BenchResult(bench: "harvest", caseName: "gpt2-small mlp_out x12 T\(T) B\(B) \(dtype.rawValue) incl. writes",
                    metric: "tokens_per_s", value: tokens / seconds,
                    extra: ["tokens": store.tokenCount, "store_mb": (store.tokenCount * 12 * 768 * (dtype == .f32 ? 4 : 2)) >> 20,
                            "peer_pytorch_body_only": 900, "goal": 1100]).emit(options)
        try? FileManager.default.removeItem(atPath: folder)
    }
}
