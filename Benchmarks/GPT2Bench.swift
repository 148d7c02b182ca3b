import Foundation
import GPT2
import Tensor

/// GPT-2 small forward throughput on random weights of the real shapes, 2 threads, B=8 T=128: with logits,
/// body only (all 12 blocks, no unembedding) and stopping after block 8 (what an activation harvest of early
/// layers needs). Peers (HF transformers on PyTorch 2.13, same machine kind): 568–583 / 869–899 / 1269–1349 tok/s.
func runGPT2Bench(_ options: BenchOptions) throws {
    BLAS.setThreads(2)
    let t0 = DispatchTime.now().uptimeNanoseconds
    let model = try GPT2Model.random(config: .small, seed: 1)
    let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    let (B, T) = (8, 128)
    var rng = RNG(seed: 2)
    let tokens = (0..<(B * T)).map { _ in Int32(rng.int(below: 50257)) }
    let repeats = options.quick ? 2 : 7
    let cases: [(String, Set<String>, Bool, Double)] = [
        ("forward+logits", [], true, 247.1e6),
        ("body-only (12 blocks)", ["blocks.11.hook_resid_post"], false, 247.1e6 - 77.2e6),
        ("body to block 8", ["blocks.8.hook_resid_pre"], false, 8 * 14.16e6),
    ]
    for (name, captures, logits, flopsPerToken) in cases {
        // Median and best of the timed runs: this 2-core machine is shared, and the best run shows what the code
        // does when nothing else steals a core.
        var times: [Double] = [], cpuTimes: [Double] = []
        _ = try model.forward(tokens: tokens, batch: B, seqLen: T, captures: captures, logits: logits)
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds, cpuStart = ProcessStats.cpuSeconds()
            _ = try model.forward(tokens: tokens, batch: B, seqLen: T, captures: captures, logits: logits)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            cpuTimes.append(ProcessStats.cpuSeconds() - cpuStart)
        }
        times.sort(); cpuTimes.sort()
        // Tokens per CPU-second of this process: on a machine shared with other jobs it tracks the code's own cost
        // better than wall time does (two busy threads ≈ twice this in tokens per wall second when idle).
        let perCPUSecond = Double(B * T) / cpuTimes[cpuTimes.count / 2]
        let tps = Double(B * T) / times[times.count / 2], best = Double(B * T) / times[0]
        BenchResult(bench: "gpt2", caseName: "\(name) B=\(B) T=\(T)", metric: "tokens_per_s", value: tps,
                    extra: ["best_tokens_per_s": best.rounded(), "tokens_per_cpu_s": perCPUSecond.rounded(), "gflops": (tps * flopsPerToken / 1e7).rounded() / 100,
                            "random_init_s": (loadSeconds * 100).rounded() / 100, "peak_rss_mb": peakRSSMegabytes()]).emit(options)
    }
}

