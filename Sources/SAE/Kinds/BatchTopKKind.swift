// BatchTopK (Bussmann et al. 2024), as SAELens's BatchTopK training SAE: in training the top k·B positive
// pre-activations v = W_e(x − b_d) + b_e over the whole batch are kept (c = v there, 0 elsewhere), with TopK's
// unit-norm decoder and AuxK; at inference c = v·H(v − θ) with one global θ, estimated in training as SAELens
// does (θ ← (1 − threshold_lr)·θ + threshold_lr·min positive code of the batch) and saved the way SAELens saves a
// trained BatchTopK SAE: a jumprelu folder with θ for every feature.
import Foundation
import Tensor

enum BatchTopKKind: SAEKind {
    static let name = "batchtopk"
    static let summary = "BatchTopK: the top k·B pre-activations of the batch in training, c = v·H(v − θ) with a global θ at inference; unit-norm decoder rows, AuxK"
    static let options = TopKKind.options + [
        SAEKindOption("threshold_lr", .number, default: "0.01", "rate of the moving estimate of the inference threshold θ"),
    ]
    static let sparsityControl = "k"
    static let decoderConstraint = DecoderConstraint.unitNorm
    static let saelensArchitecture = "jumprelu"
    /// Where the inference threshold lives (it is estimated, not trained by Adam).
    static let thresholdKey = "inference_threshold"

    static func applyDefaults(_ config: inout SAEConfig) {
        TopKKind.applyTopKDefaults(&config)
        if config.options["threshold_lr"] == nil { config.options["threshold_lr"] = 0.01 }
        if config.options[thresholdKey] == nil { config.options[thresholdKey] = 0 }
    }

    static func validate(_ config: SAEConfig) throws {
        try TopKKind.validateTopK(config)
        let lr = config.option("threshold_lr")
        guard lr > 0, lr <= 1 else { throw SAEError("SAE config: threshold_lr must be in (0, 1], got \(lr)") }
        guard config.option(thresholdKey) >= 0 else { throw SAEError("SAE config: the inference threshold must be ≥ 0, got \(config.option(thresholdKey))") }
    }

    static func featureValues(_ sae: SAE, training: Bool) -> [Float]? { nil }

    /// The k·B-th largest positive v of the batch (0 when fewer are positive), found by a two-pass radix select
    /// on the bits of the positive floats (which order like their bit patterns), without sorting or copying.
    static func prepareBatch(_ pre: UnsafePointer<Float>, rows B: Int, context: ActivationContext) -> Float? {
        guard context.training else { return nil }
        let m = context.m, wanted = Int(context.config.option("k")) * B
        return BatchSelection.kthLargestPositive(pre, context.bEnc, rows: B, cols: m, k: wanted)
    }

    @inline(__always)
    static func activateRow(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream,
                            _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>, dense: Bool) -> Int {
        if context.training {
            // Keep v ≥ the batch's k·B-th largest (ties are kept together), and v > 0.
            return ActivationRows.above(p, context.bEnc, context.m, context.batchValue ?? 0, inclusive: true,
                                        feature, value, dense: dense)
        }
        return ActivationRows.above(p, context.bEnc, context.m, Float(context.config.option(thresholdKey)), inclusive: false,
                                    feature, value, dense: dense)
    }

    static func finishStep(_ ws: StepWorkspace, _ sae: SAE, needGradients: Bool) {
        AuxK.apply(ws, sae, needGradients: needGradients)
    }

    static func afterStep(_ ws: StepWorkspace, _ sae: SAE) {
        guard ws.nnz > 0 else { return }
        var smallest = Float.infinity
        for e in 0..<ws.nnz { smallest = min(smallest, ws.entryValue.base[e]) }
        let lr = sae.config.option("threshold_lr")
        let theta = sae.config.option(thresholdKey)
        sae.config.options[thresholdKey] = (1 - lr) * theta + lr * Double(smallest)
    }

    static func saelensFields(_ config: SAEConfig) -> [String: Any] { ["training_architecture": "batchtopk", "k": Int(config.option("k"))] }

    static func saelensTensors(_ sae: SAE) -> [(String, [Float])] {
        [("threshold", [Float](repeating: Float(sae.config.option(thresholdKey)), count: sae.dSAE))]
    }

    static func readSAELensTensors(_ tensors: (String) throws -> [Float]?, _ config: inout SAEConfig) throws -> [[Float]] {
        guard let t = try tensors("threshold") else { throw SAEError("load sae: a trained batchtopk folder needs the tensor threshold [d_sae]") }
        guard let first = t.first, t.allSatisfy({ $0 == first }), first >= 0 else {
            throw SAEError("load sae: threshold differs between features (or is negative), so this is a jumprelu SAE, not a trained batchtopk one")
        }
        config.options[thresholdKey] = Double(first)
        return []
    }

    static func readSAELens(_ cfg: SAELensConfigFields, _ config: inout SAEConfig) throws {
        if let k = try cfg.integer("k") { config.options["k"] = Double(k) }
    }
}

extension SAEArchitecture {
    public static let batchtopk = SAEArchitecture(BatchTopKKind.self)
}

extension ActivationRows {
    /// The entries with v = p + b above `bar` (or at it, when `inclusive`) and above 0, 16 lanes at a time (the
    /// bar is high for BatchTopK, so most blocks have none); with `dense`, p holds the row's codes afterwards.
    @inline(__always)
    static func above(_ p: UnsafeMutablePointer<Float>, _ benc: UnsafePointer<Float>, _ m: Int, _ bar: Float, inclusive: Bool,
                      _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>, dense: Bool) -> Int {
        var j = 0, k = 0
        let rp = UnsafeMutableRawPointer(p), rb = UnsafeRawPointer(benc)
        let barV = SIMD16<Float>(repeating: bar)
        while j + 16 <= m {
            let v = rp.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                + rb.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            let on = (inclusive ? v .>= barV : v .> barV) .& (v .> 0)
            if dense { rp.storeBytes(of: v.replacing(with: 0, where: .!on), toByteOffset: j * 4, as: SIMD16<Float>.self) }
            if any(on) {
                for q in 0..<16 where on[q] { feature[k] = Int32(j + q); value[k] = v[q]; k += 1 }
            }
            j += 16
        }
        while j < m {
            let v = p[j] + benc[j]
            let on = (inclusive ? v >= bar : v > bar) && v > 0
            if on { feature[k] = Int32(j); value[k] = v; k += 1 }
            if dense { p[j] = on ? v : 0 }
            j += 1
        }
        return k
    }
}

enum BatchSelection {
    /// The k-th largest of the positive values p[b·m + j] + bias[j] (0 when fewer than k are positive).
    ///
    /// Exact, in one pass over the batch in the usual case: a threshold t₀ is taken from a sample of rows (the
    /// rank that would leave ~1.5·k values of the whole batch at or above it), the values ≥ t₀ are collected
    /// (SIMD compare; few, as k·B is ~0.5% of the batch), and when there are at least k of them the answer is
    /// their k-th largest — every value ≥ the answer is ≥ t₀, so it is among them. Otherwise (a sample that
    /// misjudged the batch, or more candidates than the buffer holds) the two-pass radix select over the whole
    /// batch gives it. Measured at 768→6144 batch 4096, k 32: the radix select alone took ~1250 of ~7400 perf
    /// samples of the BatchTopK step (load ≈ 10).
    static func kthLargestPositive(_ p: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, rows B: Int, cols m: Int, k: Int) -> Float {
        guard k > 0 else { return .infinity }
        guard let t0 = sampledThreshold(p, bias, rows: B, cols: m, k: k), t0 > 0 else {
            return radixSelect(p, bias, rows: B, cols: m, k: k)
        }
        let workers = min(Parallel.workers(forWork: B * m), max(1, B / 8))
        let capacity = 4 * k + 1024   // per worker; the expected total is ~1.5·k
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: capacity * workers)
        defer { buffer.deallocate() }
        var counts = [Int](repeating: 0, count: workers)
        counts.withUnsafeMutableBufferPointer { count in
            Parallel.run(workers) { w in
                let out = buffer + capacity * w
                var c = 0
                let bar = SIMD16<Float>(repeating: t0)
                let rb = UnsafeRawPointer(bias)
                rows: for b in Parallel.slice(B, part: w, of: workers) {
                    let row = p + b * m, rp = UnsafeRawPointer(row)
                    var j = 0
                    while j + 16 <= m {
                        let v = rp.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                            + rb.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                        let on = v .>= bar
                        if any(on) {
                            for q in 0..<16 where on[q] {
                                guard c < capacity else { c = -1; break rows }
                                out[c] = v[q]; c += 1
                            }
                        }
                        j += 16
                    }
                    while j < m {
                        let v = row[j] + bias[j]
                        if v >= t0 {
                            guard c < capacity else { c = -1; break rows }
                            out[c] = v; c += 1
                        }
                        j += 1
                    }
                }
                count[w] = c
            }
        }
        guard !counts.contains(-1), counts.reduce(0, +) >= k else { return radixSelect(p, bias, rows: B, cols: m, k: k) }
        // Candidates contiguous, then their k-th largest (all are positive: t₀ > 0).
        var total = counts[0]
        for w in 1..<workers {
            (buffer + total).update(from: buffer + capacity * w, count: counts[w])
            total += counts[w]
        }
        let zero = [Float](repeating: 0, count: 1)
        return zero.withUnsafeBufferPointer { z in radixSelect(buffer, z.baseAddress!, rows: total, cols: 1, k: k) }
    }

    /// From up to 64 evenly spaced rows: the value whose rank there is 1.5× the sample's share of k (plus slack);
    /// nil when the sample has fewer positive values than that.
    static func sampledThreshold(_ p: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, rows B: Int, cols m: Int, k: Int) -> Float? {
        let sampleRows = min(B, 64)
        guard sampleRows > 0 else { return nil }
        let sample = UnsafeMutablePointer<Float>.allocate(capacity: sampleRows * m)
        defer { sample.deallocate() }
        for s in 0..<sampleRows {
            let row = s * B / sampleRows
            for j in 0..<m { sample[s * m + j] = p[row * m + j] + bias[j] }
        }
        let share = Double(k) * Double(sampleRows) / Double(B)
        let rank = Int((1.5 * share).rounded(.up)) + 8
        guard rank <= sampleRows * m else { return nil }
        let zero = [Float](repeating: 0, count: m)
        let t = zero.withUnsafeBufferPointer { z in radixSelect(sample, z.baseAddress!, rows: sampleRows, cols: m, k: rank) }
        return t > 0 ? t : nil
    }

    /// The k-th largest positive value by a two-pass radix select on the bits of the positive floats (which
    /// order like their bit patterns), without sorting or copying.
    static func radixSelect(_ p: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, rows B: Int, cols m: Int, k: Int) -> Float {
        guard k > 0 else { return .infinity }
        let workers = min(Parallel.workers(forWork: B * m), max(1, B / 8))
        let bins = 1 << 16
        let hist = UnsafeMutablePointer<Int>.allocate(capacity: workers * bins)
        defer { hist.deallocate() }
        // Pass 1 over the high 16 bits; pass 2 over the low 16 bits inside the chosen high bin.
        func histogram(highBin: UInt32?) -> [Int] {
            hist.initialize(repeating: 0, count: workers * bins)
            Parallel.run(workers) { w in
                let h = hist + w * bins
                for b in Parallel.slice(B, part: w, of: workers) {
                    let row = p + b * m
                    for j in 0..<m {
                        let v = row[j] + bias[j]
                        guard v > 0 else { continue }
                        let bits = v.bitPattern
                        if let high = highBin {
                            if bits >> 16 == high { h[Int(bits & 0xFFFF)] += 1 }
                        } else {
                            h[Int(bits >> 16)] += 1
                        }
                    }
                }
            }
            return (0..<bins).map { i in (0..<workers).reduce(0) { $0 + hist[$1 * bins + i] } }
        }
        /// The bin holding the `rank`-th largest (1-based) and the rank inside it.
        func locate(_ counts: [Int], rank: Int) -> (bin: Int, rank: Int)? {
            var seen = 0
            for bin in stride(from: bins - 1, through: 0, by: -1) {
                if seen + counts[bin] >= rank { return (bin, rank - seen) }
                seen += counts[bin]
            }
            return nil
        }
        guard let (high, inner) = locate(histogram(highBin: nil), rank: k) else { return 0 }
        guard let (low, _) = locate(histogram(highBin: UInt32(high)), rank: inner) else { return 0 }
        return Float(bitPattern: UInt32(high) << 16 | UInt32(low))
    }
}

extension BatchTopKKind {
    static func saelensTraining(_ c: SAEConfig) throws -> SAELensTraining? {
        try SAELensTraining.requireSummedMSE(c)
        return SAELensTraining(className: "BatchTopKTrainingSAEConfig", note: "BatchTopK with AuxK",
                               fields: [try SAELensTraining.option(c, "k", as: "k"),
                                        try SAELensTraining.option(c, "aux_coefficient", as: "aux_loss_coefficient", default: 1),
                                        try SAELensTraining.option(c, "threshold_lr", as: "topk_threshold_lr", default: 0.01)])
    }
}
