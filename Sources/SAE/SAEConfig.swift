// The configuration of one SAE: every option that changes the numbers is a field here, recorded with each result
// (see ../shared/design/nsae.md §3 and the study-replication notes in ../shared/reference/sae-anchors.md §1, §7).
import Foundation

/// The architectures the registry knows.
public enum SAEArchitecture: String, Codable, Sendable, CaseIterable {
    /// c = ReLU(W_e(x − b_d) + b_e), x′ = W_d c + b_d, unit-norm decoder columns, loss α‖c‖₁ + ‖x′ − x‖².
    case relu
    /// c = tanh(ReLU(W_e(x − b_d) + b_e + ε)), ε ~ N(0, σ²), W_d free, loss β‖c‖₁ + ‖x′ − x‖², β = α·mean‖x‖².
    case nsae
}

/// When the NSAE's pre-activation noise is applied. The study's code applied it always, also when evaluating.
public enum NoiseMode: String, Codable, Sendable, CaseIterable { case train, always }

/// The reconstruction term: sum of squares over the input dims, or the study code's mean over dims.
public enum MSEMode: String, Codable, Sendable, CaseIterable { case sum, mean }

/// Where the NSAE's L1 weight β = α·(mean ‖x‖)² takes its mean norm from: the current batch (the study) or a
/// per-layer constant fixed for the run (e.g. the activation store's mean norm for that layer).
public enum BetaMode: String, Codable, Sendable, CaseIterable { case batch, layer }

public struct SAEError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

public struct SAEConfig: Codable, Sendable, Equatable {
    public var architecture: SAEArchitecture
    public var dIn: Int
    public var dSAE: Int
    /// The sparsity coefficient α (for `nsae` the L1 weight is β = α·(mean ‖x‖)²).
    public var alpha: Float
    /// Standard deviation σ of the NSAE pre-activation noise (ignored by `relu`).
    public var sigma: Float
    public var noise: NoiseMode
    public var mse: MSEMode
    public var beta: BetaMode
    /// The fixed mean input norm used when `beta == .layer`.
    public var layerMeanNorm: Float?
    /// Seeds the initialization and the noise stream.
    public var seed: UInt64
    public var hookName: String?
    public var hookLayer: Int?
    public var modelName: String?

    public init(architecture: SAEArchitecture, dIn: Int, dSAE: Int, alpha: Float, sigma: Float = 1,
                noise: NoiseMode = .train, mse: MSEMode = .sum, beta: BetaMode = .batch, layerMeanNorm: Float? = nil,
                seed: UInt64 = 1, hookName: String? = nil, hookLayer: Int? = nil, modelName: String? = nil) {
        self.architecture = architecture; self.dIn = dIn; self.dSAE = dSAE; self.alpha = alpha; self.sigma = sigma
        self.noise = noise; self.mse = mse; self.beta = beta; self.layerMeanNorm = layerMeanNorm; self.seed = seed
        self.hookName = hookName; self.hookLayer = hookLayer; self.modelName = modelName
    }

    /// Throws a message naming the bad field.
    public func validate() throws {
        guard dIn > 0 else { throw SAEError("SAE config: dIn must be positive, got \(dIn)") }
        guard dSAE > 0 else { throw SAEError("SAE config: dSAE must be positive, got \(dSAE)") }
        guard alpha.isFinite, alpha >= 0 else { throw SAEError("SAE config: alpha must be finite and ≥ 0, got \(alpha)") }
        if architecture == .nsae {
            guard sigma.isFinite, sigma >= 0 else { throw SAEError("SAE config: sigma must be finite and ≥ 0, got \(sigma)") }
            if beta == .layer {
                guard let n = layerMeanNorm, n.isFinite, n > 0 else {
                    throw SAEError("SAE config: beta=layer needs a positive layerMeanNorm (the layer's mean ‖x‖)")
                }
            }
        }
    }

    /// Whether the noise is on when the SAE is used outside training (evaluation, splicing, top-k).
    public var noiseInEvaluation: Bool { architecture == .nsae && noise == .always && sigma > 0 }
}
