// Statistics of a learned dictionary (the decoder rows = features' directions), as in the NSAE study:
// norm distribution, cosine similarity of sampled distinct pairs, "pillar" vectors, and the fits across layers.
import Foundation
import Tensor

public struct NormSummary: Codable, Sendable {
    public var norms: [Double]
    public var histogram: Histogram
    /// Quantiles at `DictionaryAnalysis.quantileLevels`.
    public var quantiles: [Double]
    public var mean: Double
}

public struct CosineSummary: Codable, Sendable {
    /// Number of distinct pairs measured, and whether that was every pair (exact) or a uniform sample.
    public var pairs: Int
    public var exact: Bool
    /// 100 bins over [-1, 1].
    public var histogram: Histogram
    public var mean: Double
    /// Fraction of pairs with |cos| > 0.9 (near-duplicate directions).
    public var fractionAbove09: Double
}

public struct PillarSummary: Codable, Sendable {
    /// Feature indices of the top-k decoder norms, largest first.
    public var features: [Int]
    public var norms: [Double]
    /// Pairwise cosines among them (k(k−1)/2 values), as a histogram over [-1, 1].
    public var cosines: CosineSummary
}

public enum DictionaryAnalysis {
    public static let quantileLevels: [Double] = [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1]

    /// ‖W_dec[j]‖ for each feature j.
    public static func decoderNorms(_ sae: SAE) -> [Double] {
        let n = sae.dIn
        return sae.W_dec.data.withUnsafeBufferPointer { p in
            (0..<sae.dSAE).map { Double(Vec.dot(p.baseAddress! + $0 * n, p.baseAddress! + $0 * n, n)).squareRoot() }
        }
    }

    public static func normSummary(_ sae: SAE, bins: Int = 50) -> NormSummary {
        let norms = decoderNorms(sae)
        let sorted = norms.sorted()
        return NormSummary(norms: norms, histogram: Histogram(values: norms, bins: bins),
                           quantiles: quantileLevels.map { Statistics.quantile(sorted: sorted, $0) },
                           mean: norms.reduce(0, +) / Double(max(norms.count, 1)))
    }

    /// Cosine similarity between decoder rows of uniformly sampled distinct pairs (i ≠ j, with replacement
    /// across pairs), seeded; when the SAE has no more distinct pairs than `pairs`, every pair exactly once.
    public static func cosineSimilarity(_ sae: SAE, pairs: Int = 1_000_000, seed: UInt64 = 1) throws -> CosineSummary {
        guard pairs > 0 else { throw SAEError("cosine: pairs must be positive, got \(pairs)") }
        guard sae.dSAE >= 2 else { throw SAEError("cosine: needs at least 2 features") }
        let unit = unitRows(sae)
        let m = sae.dSAE, n = sae.dIn
        let allPairs = m * (m - 1) / 2
        var values: [Double] = []
        unit.withUnsafeBufferPointer { u in
            let base = u.baseAddress!
            if allPairs <= pairs {
                values.reserveCapacity(allPairs)
                for i in 0..<m { for j in (i + 1)..<m { values.append(Double(Vec.dot(base + i * n, base + j * n, n))) } }
            } else {
                var rng = RNG(seed: seed)
                values.reserveCapacity(pairs)
                for _ in 0..<pairs {
                    let i = rng.int(below: m)
                    var j = rng.int(below: m - 1)
                    if j >= i { j += 1 }
                    values.append(Double(Vec.dot(base + i * n, base + j * n, n)))
                }
            }
        }
        return summarize(values, exact: allPairs <= pairs)
    }

    /// The top-k features by decoder norm and the cosines among them.
    public static func pillars(_ sae: SAE, top k: Int = 100) throws -> PillarSummary {
        guard k >= 2 else { throw SAEError("pillars: need at least 2 vectors, got \(k)") }
        let norms = decoderNorms(sae)
        let top = Array(norms.indices.sorted { norms[$0] > norms[$1] || (norms[$0] == norms[$1] && $0 < $1) }.prefix(k))
        let unit = unitRows(sae)
        let n = sae.dIn
        var values: [Double] = []
        unit.withUnsafeBufferPointer { u in
            for a in 0..<top.count { for b in (a + 1)..<top.count {
                values.append(Double(Vec.dot(u.baseAddress! + top[a] * n, u.baseAddress! + top[b] * n, n)))
            } }
        }
        return PillarSummary(features: top, norms: top.map { norms[$0] }, cosines: summarize(values, exact: true))
    }

    /// L0 against the mean input norm across the layers of a group (one point per layer).
    public static func l0VersusNorm(_ metrics: [LayerMetrics]) throws -> LinearFit {
        try LinearFit(x: metrics.map(\.meanInputNorm), y: metrics.map(\.l0))
    }

    /// (layer, L0, L1) per layer: with unit-norm decoders L1 tracks ‖x′‖; the study compares how closely it follows L0.
    public static func l1VersusL0(_ metrics: [LayerMetrics]) -> [(layer: Int, l0: Double, l1: Double)] {
        metrics.map { ($0.layer, $0.l0, $0.l1) }
    }

    static func unitRows(_ sae: SAE) -> [Float] {
        var unit = sae.W_dec.data
        let n = sae.dIn
        unit.withUnsafeMutableBufferPointer { p in for j in 0..<sae.dSAE { SAE.normalize(p.baseAddress! + j * n, n) } }
        return unit
    }

    static func summarize(_ values: [Double], exact: Bool) -> CosineSummary {
        CosineSummary(pairs: values.count, exact: exact, histogram: Histogram(values: values, bins: 100, range: -1...1),
                      mean: values.reduce(0, +) / Double(max(values.count, 1)),
                      fractionAbove09: Double(values.lazy.filter { abs($0) > 0.9 }.count) / Double(max(values.count, 1)))
    }
}
