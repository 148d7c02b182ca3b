// A group: one SAE per layer, trained together on the same tokens (the study trained all 12 GPT-2 layers at once).
import Foundation
import Tensor

public final class SAEGroup: @unchecked Sendable {
    // @unchecked Sendable: see SAE; a group is used by one thread at a time.
    public let saes: [SAE]
    /// Steps the whole group has completed (every SAE has taken this many optimizer steps).
    public internal(set) var stepsTrained: Int = 0
    /// Every log row written so far, across calls to `train`.
    public internal(set) var log = TrainingLog()

    public init(saes: [SAE]) throws {
        guard !saes.isEmpty else { throw SAEError("an SAE group needs at least one SAE") }
        self.saes = saes
        stepsTrained = saes.map(\.optimizerSteps).min() ?? 0
    }

    /// One fresh SAE per layer: `dims[i]` inputs and `expansion·dims[i]` features; layer indices and hook names
    /// default to 0..<count and nil. Each SAE's seed is `seed + i` so layers start differently but reproducibly.
    public static func make(_ architecture: String, dims: [Int], expansion: Int, alpha: Float, sigma: Float = 1,
                            noise: NoiseMode = .train, mse: MSEMode = .sum, beta: BetaMode = .batch,
                            layerMeanNorms: [Float]? = nil, seed: UInt64 = 1, layers: [Int]? = nil,
                            hookNames: [String]? = nil, modelName: String? = nil) throws -> SAEGroup {
        guard expansion > 0 else { throw SAEError("expansion must be positive, got \(expansion)") }
        if let l = layers, l.count != dims.count { throw SAEError("\(l.count) layer indices for \(dims.count) layers") }
        if let h = hookNames, h.count != dims.count { throw SAEError("\(h.count) hook names for \(dims.count) layers") }
        if let n = layerMeanNorms, n.count != dims.count { throw SAEError("\(n.count) layer mean norms for \(dims.count) layers") }
        let saes = try dims.enumerated().map { i, d in
            try SAERegistry.make(architecture, dIn: d, dSAE: d * expansion, alpha: alpha, sigma: sigma, noise: noise,
                                 mse: mse, beta: beta, layerMeanNorm: layerMeanNorms?[i], seed: seed &+ UInt64(i),
                                 hookName: hookNames?[i], hookLayer: layers?[i] ?? i, modelName: modelName)
        }
        return try SAEGroup(saes: saes)
    }

    /// One fresh SAE per layer from a template config (architecture, options, α, mse, seed …): layer i gets
    /// `dims[i]` inputs, `expansion·dims[i]` features, seed `template.seed + i` and its hook; the architecture
    /// fills in the defaults that depend on the size.
    public static func make(template: SAEConfig, dims: [Int], expansion: Int, layerMeanNorms: [Float]? = nil,
                            layers: [Int]? = nil, hookNames: [String]? = nil) throws -> SAEGroup {
        guard expansion > 0 else { throw SAEError("expansion must be positive, got \(expansion)") }
        if let l = layers, l.count != dims.count { throw SAEError("\(l.count) layer indices for \(dims.count) layers") }
        if let h = hookNames, h.count != dims.count { throw SAEError("\(h.count) hook names for \(dims.count) layers") }
        if let n = layerMeanNorms, n.count != dims.count { throw SAEError("\(n.count) layer mean norms for \(dims.count) layers") }
        let saes = try dims.enumerated().map { i, d in
            var config = template
            config.dIn = d
            let (dSAE, overflow) = d.multipliedReportingOverflow(by: expansion)
            guard !overflow else { throw SAEError("d_sae = \(d) × \(expansion) overflows") }
            config.dSAE = dSAE
            config.layerMeanNorm = layerMeanNorms?[i]
            config.seed = template.seed &+ UInt64(i)
            config.hookName = hookNames?[i]
            config.hookLayer = layers?[i] ?? i
            config.architecture.applyDefaults(&config)
            return try SAE(config: config)
        }
        return try SAEGroup(saes: saes)
    }

    public var count: Int { saes.count }
    /// The layer index of each SAE (its config's hookLayer, else its position).
    public var layers: [Int] { saes.enumerated().map { $1.config.hookLayer ?? $0 } }
    public var hookNames: [String?] { saes.map(\.config.hookName) }
    public var dims: [Int] { saes.map(\.dIn) }
    public subscript(i: Int) -> SAE { saes[i] }

    /// Sets each SAE's b_dec to the mean of that layer's data (an alternative to the default b_dec = 0).
    public func initializeDecoderBiasFromMean(_ layers: [Matrix]) throws {
        guard layers.count == count else { throw SAEError("\(layers.count) matrices for \(count) layers") }
        for (sae, x) in zip(saes, layers) {
            try sae.checkInput(x, "b_dec init")
            var mean = [Float](repeating: 0, count: x.cols)
            for r in 0..<x.rows { for c in 0..<x.cols { mean[c] += x[r, c] } }
            try sae.setDecoderBias(mean.map { $0 / Float(max(x.rows, 1)) })
        }
    }
}
