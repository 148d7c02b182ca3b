// Synthetic activations with known ground truth: each token is a sparse non-negative combination of `active`
// features drawn from a random unit dictionary; "layer" l is the same tokens scaled by norms[l], so layers
// differ only in norm, as the study's layers do. Recovery is the mean max cosine similarity (MMCS) between the
// true features and the learned decoder rows.
import Foundation
import Tensor

public final class SyntheticData: BatchSource {
    /// The ground truth, [features, d], unit rows.
    public let dictionary: Matrix
    public let active: Int
    public let norms: [Float]
    /// Each active feature's coefficient is uniform in this range.
    public let magnitudes: ClosedRange<Float>
    private var rng: RNG

    public var layerCount: Int { norms.count }
    public var dims: [Int] { [Int](repeating: dictionary.cols, count: norms.count) }
    public var features: Int { dictionary.rows }

    public init(d: Int, features: Int, active: Int, norms: [Float] = [1], magnitudes: ClosedRange<Float> = 0.5...1.5,
                seed: UInt64 = 1) throws {
        guard d > 0, features > 0 else { throw SAEError("synth: d and features must be positive (got d=\(d), features=\(features))") }
        guard active > 0, active <= features else { throw SAEError("synth: active must be in 1...\(features), got \(active)") }
        guard !norms.isEmpty, norms.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw SAEError("synth: norms must be positive, got \(norms)") }
        guard magnitudes.lowerBound >= 0 else { throw SAEError("synth: magnitudes must be ≥ 0") }
        var r = RNG(seed: seed)
        var dict = r.normalMatrix(features, d)
        dict.data.withUnsafeMutableBufferPointer { p in for j in 0..<features { SAE.normalize(p.baseAddress! + j * d, d) } }
        dictionary = dict
        self.active = active; self.norms = norms; self.magnitudes = magnitudes
        rng = RNG(seed: seed &+ 0xDA7A)
    }

    public func nextBatch(rows: Int) throws -> [Matrix] {
        guard rows > 0 else { throw SAEError("synth: batch size must be positive, got \(rows)") }
        let d = dictionary.cols
        var base = Matrix(rows: rows, cols: d)
        var chosen = [Int](repeating: 0, count: active)
        dictionary.data.withUnsafeBufferPointer { dict in
            base.data.withUnsafeMutableBufferPointer { out in
                for b in 0..<rows {
                    drawDistinct(into: &chosen)
                    for f in chosen {
                        let a = rng.uniform(magnitudes.lowerBound, magnitudes.upperBound)
                        Vec.axpy(a, dict.baseAddress! + f * d, out.baseAddress! + b * d, d)
                    }
                }
            }
        }
        return norms.map { s in
            var m = base
            m.data.withUnsafeMutableBufferPointer { Kernels.scale($0.baseAddress!, s, count: $0.count) }
            return m
        }
    }

    /// `active` distinct features, uniformly. Rejection sampling (a scan for a few, a set for more: the same draws)
    /// while at most half the features are taken; beyond that Floyd's algorithm, which needs exactly `active` draws,
    /// where rejection would need about features·ln(features).
    private func drawDistinct(into chosen: inout [Int]) {
        let n = features
        if active * 2 > n {
            var taken = Set<Int>(minimumCapacity: active)
            for (slot, j) in ((n - active)..<n).enumerated() {
                let t = rng.int(below: j + 1)
                let pick = taken.contains(t) ? j : t
                taken.insert(pick)
                chosen[slot] = pick
            }
            return
        }
        var k = 0
        if active <= 32 {
            while k < active {
                let f = rng.int(below: n)
                if !chosen[0..<k].contains(f) { chosen[k] = f; k += 1 }
            }
            return
        }
        var taken = Set<Int>(minimumCapacity: active)
        while k < active {
            let f = rng.int(below: n)
            if taken.insert(f).inserted { chosen[k] = f; k += 1 }
        }
    }

    /// A finite data set: `tokens` rows per layer.
    public func matrices(tokens: Int) throws -> [Matrix] { try nextBatch(rows: tokens) }

    /// Mean over true features of the max cosine similarity with any learned decoder row.
    public static func recovery(trueFeatures: Matrix, learned sae: SAE) throws -> Double {
        guard trueFeatures.cols == sae.dIn else {
            throw SAEError("recovery: true features have d = \(trueFeatures.cols) but the SAE has d_in = \(sae.dIn)")
        }
        let unit = DictionaryAnalysis.unitRows(sae)
        var truth = trueFeatures
        let n = sae.dIn
        truth.data.withUnsafeMutableBufferPointer { p in for j in 0..<truth.rows { SAE.normalize(p.baseAddress! + j * n, n) } }
        var cos = Matrix(rows: truth.rows, cols: sae.dSAE)
        BLAS.gemm(truth, Matrix(rows: sae.dSAE, cols: n, data: unit), transB: true, into: &cos)
        var total = 0.0
        for i in 0..<truth.rows {
            var best = -Float.infinity
            for j in 0..<sae.dSAE { best = max(best, cos[i, j]) }
            total += Double(best)
        }
        return total / Double(truth.rows)
    }

    public func recovery(_ sae: SAE) throws -> Double { try Self.recovery(trueFeatures: dictionary, learned: sae) }
}
