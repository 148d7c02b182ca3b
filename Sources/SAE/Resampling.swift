// Resampling of dead features (Anthropic, "Towards Monosemanticity", 2023), for the architectures whose sparsity
// comes from an L1 penalty (`SAEKind.resamplesDeadFeatures`). Every `every` steps, the features that have not fired
// since the previous resampling are given new directions: a batch is reconstructed, its rows are drawn with
// probability ∝ (‖x′ − x‖²)², and each dead feature j takes one drawn row v = x − b_dec:
//   W_dec[j] ← v/‖v‖ · (1 for a unit-norm decoder, else the mean norm of the alive decoder rows),
//   W_enc row j ← v/‖v‖ · s · (mean norm of the alive encoder rows),  b_enc[j] ← −q · s·‖v‖·(that mean norm),
// with s = 0.2 and q = 0 as Anthropic (b_enc 0); the kind's `resampledEncoderScale` and `resampledSelectivity`
// (the noisy NSAE: s = 1, q = 0.5, so the new feature fires only on inputs projecting onto v at least half as
// much as v itself),
// and its Adam moments restart from zero. The draws are seeded by the SAE's seed and the step.
import Foundation
import Tensor

public enum Resampling {
    /// Resamples the dead features of every SAE of the groups that supports it, on one batch from `source`
    /// (drawn once for all groups, as a group trained alone would draw it). Returns the number of features
    /// resampled per SAE, group by group.
    @discardableResult
    static func resampleDead(_ groups: [SAEGroup], source: any BatchSource, batchSize: Int, windowTokens: Int) throws -> [[Int]] {
        guard groups.contains(where: { $0.saes.contains(where: { $0.config.architecture.kind.resamplesDeadFeatures }) }) else {
            return groups.map { $0.saes.map { _ in 0 } }
        }
        let batch = try source.nextBatch(rows: batchSize)
        return try groups.map { group in
            try zip(group.saes, batch).map { sae, x in
                guard sae.config.architecture.kind.resamplesDeadFeatures, let since = sae.tokensSinceFired else { return 0 }
                let dead = since.indices.filter { since[$0] >= windowTokens }
                guard !dead.isEmpty else { return 0 }
                try resample(sae, features: dead, on: x, step: UInt64(group.stepsTrained))
                return dead.count
            }
        }
    }

    static func resample(_ sae: SAE, features dead: [Int], on x: Matrix, step: UInt64) throws {
        let n = sae.dIn, m = sae.dSAE
        let ws = StepWorkspace(dIn: n, dSAE: m)
        ws.forward(sae, x: x, noiseSeed: nil, step: 0, denseCodes: false, needGradients: false, training: false)
        let weights = (0..<x.rows).map { ws.rowSquaredError.base[$0] * ws.rowSquaredError.base[$0] }
        let total = weights.reduce(0, +)
        guard total > 0, total.isFinite else { return }
        let deadSet = Set(dead)
        let alive = (0..<m).filter { !deadSet.contains($0) }
        func meanNorm(_ rows: Matrix, _ which: [Int]) -> Float {
            guard !which.isEmpty else { return 1 }
            let s = which.reduce(0.0) { acc, j in acc + Double(rows.row(j).reduce(0) { $0 + $1 * $1 }.squareRoot()) }
            return Float(s / Double(which.count))
        }
        let kind = sae.config.architecture.kind
        let encoderNorm = meanNorm(sae.encoderRows, alive) * kind.resampledEncoderScale
        let decoderNorm: Float = sae.config.architecture.decoderConstraint == .unitNorm ? 1 : meanNorm(sae.W_dec, alive)
        var cumulative: [Double] = []
        cumulative.reserveCapacity(weights.count)
        var running = 0.0
        for w in weights { running += w; cumulative.append(running) }
        var rng = RNG(seed: GaussianNoise.streamSeed(base: sae.config.seed ^ 0x5E5A_4D91, step: step, block: 0))
        let state = sae.optimizerState
        for j in dead {
            let u = Double(rng.uniform()) * total
            var lo = 0, hi = cumulative.count - 1
            while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] < u { lo = mid + 1 } else { hi = mid } }
            var v = x.row(lo)
            for i in 0..<n { v[i] -= sae.b_dec[i] }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0, norm.isFinite else { continue }
            for i in 0..<n {
                sae.W_dec[j, i] = v[i] / norm * decoderNorm
                sae.encoderRows[j, i] = v[i] / norm * encoderNorm
            }
            // Its pre-activation on its own input is encoderNorm·‖v‖; the bias keeps it to inputs near v.
            sae.b_enc[j] = -kind.resampledSelectivity * encoderNorm * norm
            sae.tokensSinceFired?[j] = 0
            if let s = state {
                for p in [s.mEnc, s.vEnc, s.mDec, s.vDec] { (p + j * n).update(repeating: 0, count: n) }
                s.mBEnc[j] = 0; s.vBEnc[j] = 0
            }
        }
    }
}
