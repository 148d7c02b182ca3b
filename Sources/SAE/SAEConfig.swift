// The configuration of one SAE: every option that changes the numbers is a field here, recorded with each result
// (see ../shared/design/nsae.md §3 and the study-replication notes in ../shared/reference/sae-anchors.md §1, §7).
import Foundation

/// When the NSAE's pre-activation noise is applied. The study's code applied it always, also when evaluating.
public enum NoiseMode: String, Codable, Sendable, CaseIterable { case train, always }

/// The reconstruction term: sum of squares over the input dims, or the study code's mean over dims.
public enum MSEMode: String, Codable, Sendable, CaseIterable { case sum, mean }

/// Where the NSAE's L1 weight β = α·(mean ‖x‖)² takes its mean norm from: the current batch (the study) or a
/// per-layer constant fixed for the run (e.g. the activation store's mean norm for that layer).
public enum BetaMode: String, Codable, Sendable, CaseIterable { case batch, layer }

/// SAELens's `normalize_activations`, applied as SAELens applies it to a folder loaded from disk: `none` and
/// `expected_average_only_in` leave x as it is (SAELens folds that scale only for a pretrained release whose
/// factor it knows), `constant_norm_rescale` encodes x·√d/‖x‖ and scales the output back, `layer_norm` encodes
/// (x − mean)/(std + 1e-5) (std with Bessel's correction, as torch) and maps the output back.
public enum InputNormalization: String, Codable, Sendable, CaseIterable {
    case none
    case expectedAverageOnlyIn = "expected_average_only_in"
    case constantNormRescale = "constant_norm_rescale"
    case layerNorm = "layer_norm"

    /// Whether the SAE sees a per-row transformed x (and its output is transformed back).
    public var transformsRows: Bool { self == .constantNormRescale || self == .layerNorm }
}

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
    /// The architecture's own numeric options by name (TopK's k, JumpReLU's bandwidth, …), defaults filled in by
    /// the architecture; empty for relu and nsae, whose options are the fields above.
    public var options: [String: Double] = [:]
    /// How inputs are normalized before encoding (from a SAELens folder; nsae trains with `none`).
    public var normalization: InputNormalization = .none

    public init(architecture: SAEArchitecture, dIn: Int, dSAE: Int, alpha: Float, sigma: Float = 1,
                noise: NoiseMode = .train, mse: MSEMode = .sum, beta: BetaMode = .batch, layerMeanNorm: Float? = nil,
                seed: UInt64 = 1, hookName: String? = nil, hookLayer: Int? = nil, modelName: String? = nil) {
        self.architecture = architecture; self.dIn = dIn; self.dSAE = dSAE; self.alpha = alpha; self.sigma = sigma
        self.noise = noise; self.mse = mse; self.beta = beta; self.layerMeanNorm = layerMeanNorm; self.seed = seed
        self.hookName = hookName; self.hookLayer = hookLayer; self.modelName = modelName
    }

    enum CodingKeys: String, CodingKey {
        case architecture, dIn, dSAE, alpha, sigma, noise, mse, beta, layerMeanNorm, seed, hookName, hookLayer, modelName, options
        case normalization
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architecture = try c.decode(SAEArchitecture.self, forKey: .architecture)
        dIn = try c.decode(Int.self, forKey: .dIn); dSAE = try c.decode(Int.self, forKey: .dSAE)
        alpha = try c.decode(Float.self, forKey: .alpha); sigma = try c.decode(Float.self, forKey: .sigma)
        noise = try c.decode(NoiseMode.self, forKey: .noise); mse = try c.decode(MSEMode.self, forKey: .mse)
        beta = try c.decode(BetaMode.self, forKey: .beta)
        layerMeanNorm = try c.decodeIfPresent(Float.self, forKey: .layerMeanNorm)
        seed = try c.decode(UInt64.self, forKey: .seed)
        hookName = try c.decodeIfPresent(String.self, forKey: .hookName)
        hookLayer = try c.decodeIfPresent(Int.self, forKey: .hookLayer)
        modelName = try c.decodeIfPresent(String.self, forKey: .modelName)
        // Checkpoints written before architectures had options of their own have none.
        options = try c.decodeIfPresent([String: Double].self, forKey: .options) ?? [:]
        normalization = try c.decodeIfPresent(InputNormalization.self, forKey: .normalization) ?? .none
    }

    /// Throws a message naming the bad field.
    public func validate() throws {
        guard dIn > 0 else { throw SAEError("SAE config: dIn must be positive, got \(dIn)") }
        guard dSAE > 0 else { throw SAEError("SAE config: dSAE must be positive, got \(dSAE)") }
        guard dIn.multipliedReportingOverflow(by: dSAE).overflow == false, dIn * dSAE <= 1 << 40 else {
            throw SAEError("SAE config: d_in × d_sae = \(dIn) × \(dSAE) is too large")
        }
        guard alpha.isFinite, alpha >= 0 else { throw SAEError("SAE config: alpha must be finite and ≥ 0, got \(alpha)") }
        for (name, value) in options where !value.isFinite {
            throw SAEError("SAE config: option \(name) must be finite, got \(value)")
        }
        try architecture.kind.validate(self)
    }

    /// The value of one of the architecture's own options (defaults are filled in when the SAE is made).
    func option(_ name: String) -> Double {
        guard let v = options[name] else { preconditionFailure("\(architecture) option \(name) has no value (defaults not applied)") }
        return v
    }

    /// Whether the noise is on when the SAE is used outside training (evaluation, splicing, top-k).
    public var noiseInEvaluation: Bool { architecture.kind.noiseSigma(self, training: false) != nil }
}

extension SAEConfig {
    /// alpha, the option every L1-penalised architecture has.
    mutating func setCommonL1Option(_ option: String, _ value: SAEOptionSetting) throws {
        guard option == "alpha", case .number(let v) = value else {
            throw SAEError("\(architecture) has no option \(option)")
        }
        guard v.isFinite, v >= 0 else { throw SAEError("alpha must be ≥ 0, got \(v)") }
        alpha = Float(v)
    }
}
