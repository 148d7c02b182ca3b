import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SAE
import Tensor

/// `Benchmarks sae-sweep`: the numpy peer of the shape, then the sweep case.
/// The sweep case of `Benchmarks sae` (design §6, issue 17): 4 relu SAEs 768→6144 on one layer, batch 4096,
/// trained as one sweep (each batch drawn once and fed to all four) against the same four trained one after
/// another (each drawing its own batches), in the same run. The batches come from a shuffled in-memory source
/// (a copy per batch, as a store reader makes one), so reading once is part of what is measured. Rounds
/// alternate sweep / one-after-another (which goes first alternates too) and the best round of each is compared;
/// the process CPU time of each is reported beside the wall time, since on a shared machine other work stretches
/// wall time but not (much) the CPU time the run itself takes.
/// Goal: sweep throughput ≥ 0.9× the one-after-another throughput. The numpy peer is the dense step of the
/// same shape from the same run, per SAE.
func runSweepBench(_ options: BenchOptions) throws {
    let numpy = PeerStep.run("sae_numpy.py", dSAE: 6144, batch: 4096, quick: options.quick)
    if let numpy {
        BenchResult(bench: "sae", caseName: "peer numpy dense step 768x6144 b4096 (same run)", metric: "activations_per_s",
                    value: numpy.rate).emit(options)
    }
    try runSweepCase(options, numpyPeer: numpy?.rate)
}

func runSweepCase(_ options: BenchOptions, numpyPeer: Double?) throws {
    BLAS.setThreads(2)
    let dIn = 768, expansion = 8, dSAE = dIn * expansion, batch = 4096
    let alphas: [Double] = [1e-4, 3e-4, 1e-3, 3e-3]
    var rng = RNG(seed: 5)
    let rows = options.quick ? 2 * batch : 4 * batch
    let data = rng.normalMatrix(rows, dIn)
    let steps = options.quick ? 2 : 3
    let rounds = options.quick ? 1 : 4
    var template = SAEConfig(architecture: .relu, dIn: dIn, dSAE: dSAE, alpha: .nan)
    template.architecture.applyDefaults(&template)
    let trainer = GroupTrainer(optimizer: AdamConfig(lr: 1e-4), batchSize: batch, logEvery: steps)

    /// b_enc = −2.33 puts ~1% of features on for x ~ N(0, I) and unit encoder rows, as the other sae cases.
    func realistic(_ group: SAEGroup) throws -> SAEGroup {
        for sae in group.saes { try sae.setParameters(b_enc: [Float](repeating: -2.33, count: dSAE)) }
        return group
    }
    func freshSweep() throws -> SAESweep {
        let sweep = try SAESweep.make(template: template, values: alphas, dims: [dIn], expansion: expansion)
        for group in sweep.groups { _ = try realistic(group) }
        return sweep
    }
    func freshGroup(_ alpha: Double) throws -> SAEGroup {
        var config = template
        try config.architecture.set("alpha", .number(alpha), in: &config)
        return try realistic(try SAEGroup.make(template: config, dims: [dIn], expansion: expansion))
    }
    /// Wall and process CPU seconds of `body`.
    func timed(_ body: () throws -> Void) rethrows -> (Double, Double) {
        let t0 = DispatchTime.now().uptimeNanoseconds, c0 = ProcessStats.cpuSeconds()
        try body()
        return (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, ProcessStats.cpuSeconds() - c0)
    }
    var sweepTimes: [Double] = [], separateTimes: [Double] = [], sweepCPU: [Double] = [], separateCPU: [Double] = []
    var l0: [Double] = []
    func runSweep() throws {
        let sweep = try freshSweep()
        let source = try InMemoryBatchSource(layers: [data], seed: 1)
        try trainer.train(sweep, source: source, steps: 1, context: .silent)   // warm-up: buffers, optimizer state
        let (wall, cpu) = try timed {
            let logs = try trainer.train(sweep, source: source, steps: steps, context: .silent)
            l0 = logs.map { $0.rows.last!.l0 }
        }
        sweepTimes.append(wall); sweepCPU.append(cpu)
    }
    func runSeparately() throws {
        var wall = 0.0, cpu = 0.0
        for alpha in alphas {
            let group = try freshGroup(alpha)
            let source = try InMemoryBatchSource(layers: [data], seed: 1)
            try trainer.train(group, source: source, steps: 1, context: .silent)
            let (w, c) = try timed { try trainer.train(group, source: source, steps: steps, context: .silent) }
            wall += w; cpu += c
        }
        separateTimes.append(wall); separateCPU.append(cpu)
    }
    for round in 0..<rounds {
        if round % 2 == 0 { try runSweep(); try runSeparately() } else { try runSeparately(); try runSweep() }
    }
    let activations = Double(alphas.count * batch * steps)   // SAE-activations: each SAE sees batch·steps rows
    let sweepRate = activations / sweepTimes.min()!, separateRate = activations / separateTimes.min()!
    let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
    let shape = "4 relu \(dIn)x\(dSAE) b\(batch) 1 layer"
    let sweepCPURate = activations / sweepCPU.min()!, separateCPURate = activations / separateCPU.min()!
    func list(_ v: [Double]) -> [Double] { v.map { ($0 * 100).rounded() / 100 } }
    BenchResult(bench: "sae", caseName: "\(shape), one after another", metric: "activations_per_s", value: separateRate,
                extra: ["round_seconds": list(separateTimes), "round_cpu_seconds": list(separateCPU),
                        "activations_per_cpu_s": separateCPURate.rounded(), "loadavg_1m": load]).emit(options)
    var extra: [String: Any] = ["l0": l0.map { ($0 * 10).rounded() / 10 }, "rounds": rounds, "steps": steps,
                                "round_seconds": list(sweepTimes), "round_cpu_seconds": list(sweepCPU), "loadavg_1m": load,
                                "activations_per_cpu_s": sweepCPURate.rounded(),
                                "vs_one_after_another": (sweepRate / separateRate * 1000).rounded() / 1000,
                                "vs_one_after_another_cpu": (sweepCPURate / separateCPURate * 1000).rounded() / 1000, "goal": 0.9]
    if let peer = numpyPeer, peer.isFinite { extra["vs_numpy_dense_step_same_run"] = (sweepRate / peer * 100).rounded() / 100 }
    BenchResult(bench: "sae", caseName: "\(shape), as one sweep", metric: "activations_per_s", value: sweepRate,
                extra: extra).emit(options)
}
