// The pinned metrics of ../shared/design/nsae.md §4, accumulated in a stream over batches, per layer.
import Foundation
import Tensor

public struct LayerMetrics: Codable, Sendable {
    public var layer: Int
    public var hookName: String?
    public var tokens: Int
    /// Mean count of active features per token.
    public var l0: Double
    /// Mean ‖c‖₁ per token.
    public var l1: Double
    /// Mean ‖x′ − x‖² per token, and that divided by d.
    public var mse: Double
    public var msePerDim: Double
    /// 1 − Σ‖x − x′‖² / Σ‖x − x̄‖², x̄ the mean over the evaluated tokens.
    public var explainedVariance: Double
    /// Mean over tokens of ‖x′‖/‖x‖ (tokens with x = 0 are skipped).
    public var suppression: Double
    /// Mean ‖x‖ of the evaluated tokens.
    public var meanInputNorm: Double
    /// Fraction of tokens on which each feature is active.
    public var density: [Double]
    /// Fraction of features never active over the set, and the number that were.
    public var deadFraction: Double
    public var aliveCount: Int
    public var aliveFraction: Double
    /// log10 of the densities of the alive features, 50 bins over [-8, 0].
    public var log10DensityHistogram: Histogram
    /// Whether the codes were computed with noise (nsae with noise=always).
    public var noise: Bool
}

/// Streaming sums for one layer.
public final class MetricsAccumulator {
    public let sae: SAE
    public let layer: Int
    private let workspace: StepWorkspace
    private var tokens = 0
    private var sumL0 = 0.0, sumL1 = 0.0, sumSqErr = 0.0, sumSqX = 0.0, sumRatio = 0.0, ratioCount = 0, sumNorm = 0.0
    private var sumX: [Double]
    private var fires: [Int]
    private var batches: UInt64 = 0

    public init(sae: SAE, layer: Int) {
        self.sae = sae; self.layer = layer
        workspace = StepWorkspace(dIn: sae.dIn, dSAE: sae.dSAE)
        sumX = [Double](repeating: 0, count: sae.dIn)
        fires = [Int](repeating: 0, count: sae.dSAE)
    }

    public func add(_ x: Matrix) throws {
        try sae.checkInput(x, "eval layer \(layer)")
        x.data.withUnsafeBufferPointer { add($0.baseAddress!, rows: x.rows) }
    }

    /// Rows x [rows, d_in] (checked by the caller).
    func add(_ x: UnsafePointer<Float>, rows B: Int) {
        let n = sae.dIn
        guard B > 0 else { return }
        let noise = sae.config.noiseInEvaluation
        // The decode (row axpys or one c · W_dec GEMM) is chosen by DenseStep.crossover(decodeOnly: true): the
        // training step's 15% while W_dec fits the last-level cache (the two decodes measured even at 10%), 5% beyond.
        // The metrics need only the reconstruction and the counts: on dense codes no entry list is built.
        workspace.forward(sae, x: x, rows: B, noiseSeed: noise ? sae.config.seed &+ 0xE7A1 : nil, step: batches,
                          denseCodes: false, needGradients: false, readsOnlyCounts: true)
        batches += 1
        let ws = workspace
        let recon = UnsafePointer(ws.recon.base)
        sumX.withUnsafeMutableBufferPointer { sx in
            let sumXP = sx.baseAddress!
            for b in 0..<B {
                let xr = x + b * n, rr = recon + b * n
                var nx = 0.0, nr = 0.0
                for i in 0..<n {
                    let v = Double(xr[i]); nx += v * v; sumXP[i] += v
                    nr += Double(rr[i]) * Double(rr[i])
                }
                sumSqX += nx
                sumNorm += nx.squareRoot()
                if nx > 0 { sumRatio += (nr / nx).squareRoot(); ratioCount += 1 }
                sumSqErr += ws.rowSquaredError.base[b]
            }
        }
        fires.withUnsafeMutableBufferPointer { f in
            if ws.countsAreDense {
                let counts = ws.fireCount.base
                for j in 0..<f.count { f[j] += Int(counts[j]) }
            } else {
                let feature = ws.entryFeature.base
                for e in 0..<ws.nnz { f[Int(feature[e])] += 1 }
            }
        }
        sumL0 += Double(ws.nnz)
        sumL1 += ws.l1Sum
        tokens += B
    }

    public func result() throws -> LayerMetrics {
        guard tokens > 0 else { throw SAEError("eval layer \(layer): no tokens were evaluated") }
        let N = Double(tokens), d = Double(sae.dIn)
        // Σ‖x − x̄‖² = Σ‖x‖² − N‖x̄‖²
        let centred = sumSqX - sumX.reduce(0) { $0 + $1 * $1 } / N
        let density = fires.map { Double($0) / N }
        let alive = fires.lazy.filter { $0 > 0 }.count
        let logs = density.lazy.filter { $0 > 0 }.map { Foundation.log10($0) }
        return LayerMetrics(layer: layer, hookName: sae.config.hookName, tokens: tokens, l0: sumL0 / N, l1: sumL1 / N,
                            mse: sumSqErr / N, msePerDim: sumSqErr / (N * d),
                            explainedVariance: centred > 0 ? 1 - sumSqErr / centred : .nan,
                            suppression: ratioCount > 0 ? sumRatio / Double(ratioCount) : .nan,
                            meanInputNorm: sumNorm / N, density: density,
                            deadFraction: Double(fires.count - alive) / Double(fires.count), aliveCount: alive,
                            aliveFraction: Double(alive) / Double(fires.count),
                            log10DensityHistogram: Histogram(values: logs, bins: 50, range: -8...0),
                            noise: sae.config.noiseInEvaluation)
    }
}

public enum Evaluator {
    /// Metrics of one SAE on a matrix of activations.
    public static func evaluate(_ sae: SAE, on x: Matrix, layer: Int? = nil, batchSize: Int = 4096) throws -> LayerMetrics {
        let acc = MetricsAccumulator(sae: sae, layer: layer ?? sae.config.hookLayer ?? 0)
        try sae.checkInput(x, "eval layer \(acc.layer)")
        x.data.withUnsafeBufferPointer { p in
            var start = 0
            while start < x.rows {
                let end = min(x.rows, start + max(1, batchSize))
                acc.add(p.baseAddress! + start * x.cols, rows: end - start)
                start = end
            }
        }
        let m = try acc.result()
        sae.featureDensity = m.density.map { Float($0) }
        return m
    }

    /// Metrics of every SAE of a group over `tokens` tokens drawn from the source (the same tokens for all layers).
    public static func evaluate(_ group: SAEGroup, source: any BatchSource, tokens: Int, batchSize: Int = 4096,
                                context: WorkContext = .silent) throws -> [LayerMetrics] {
        guard tokens > 0 else { throw SAEError("eval: tokens must be positive, got \(tokens)") }
        guard source.layerCount == group.count else {
            throw SAEError("eval: the activations have \(source.layerCount) layers but the SAE group has \(group.count)")
        }
        let accs = group.saes.enumerated().map { MetricsAccumulator(sae: $1, layer: group.layers[$0]) }
        var done = 0
        while done < tokens {
            try context.checkCancelled()
            let rows = min(batchSize, tokens - done)
            let batch = try source.nextBatch(rows: rows)
            guard batch.count == group.count else { throw SAEError("eval: the source returned \(batch.count) matrices for \(group.count) layers") }
            for (acc, x) in zip(accs, batch) { try acc.add(x) }
            done += rows
            context.report(ProgressUpdate(task: "eval", done: done, total: tokens, unit: "tokens"))
        }
        let results = try accs.map { try $0.result() }
        for (sae, m) in zip(group.saes, results) { sae.featureDensity = m.density.map { Float($0) } }
        return results
    }
}
