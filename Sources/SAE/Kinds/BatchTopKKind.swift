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
        let m = context.m, b = context.bEnc
        var k = 0
        if context.training {
            // Keep v ≥ the batch's k·B-th largest (ties are kept together), and v > 0.
            let bar = context.batchValue ?? 0
            for j in 0..<m {
                let v = p[j] + b[j]
                let on = v > 0 && v >= bar
                if on { feature[k] = Int32(j); value[k] = v; k += 1 }
                if dense { p[j] = on ? v : 0 }
            }
        } else {
            let theta = Float(context.config.option(thresholdKey))
            for j in 0..<m {
                let v = p[j] + b[j]
                let on = v > theta && v > 0
                if on { feature[k] = Int32(j); value[k] = v; k += 1 }
                if dense { p[j] = on ? v : 0 }
            }
        }
        return k
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

enum BatchSelection {
    /// The k-th largest of the positive values p[b·m + j] + bias[j] (0 when fewer than k are positive).
    static func kthLargestPositive(_ p: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, rows B: Int, cols m: Int, k: Int) -> Float {
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
