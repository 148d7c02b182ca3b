// The normalizing SAE: c = tanh(ReLU(W_e(x − b_d) + b_e + ε)), ε ~ N(0, σ²), free decoder, loss ‖x′ − x‖² + β‖c‖₁
// with β = α·(mean ‖x‖)² from the batch or a per-layer constant (design §3).
import Foundation

enum NSAEKind: SAEKind {
    static let name = "nsae"
    static let aliases = ["normalized"]
    static let summary = "normalizing: c = tanh(ReLU(W_e(x − b_d) + b_e + ε)), ε ~ N(0, σ²), free decoder, loss ‖x′ − x‖² + α·mean‖x‖²·‖c‖₁"
    static let options = [
        SAEKindOption("alpha", .number, default: "1e-6", "sparsity coefficient α; the L1 weight is β = α·(mean ‖x‖)²"),
        SAEKindOption("sigma", .number, default: "1", "NSAE noise scale"),
        SAEKindOption("noise", .word(NoiseMode.allCases.map(\.rawValue)), default: "train", "when NSAE noise is applied"),
        SAEKindOption("beta", .word(BetaMode.allCases.map(\.rawValue)), default: "batch", "NSAE normalization statistics"),
    ]
    static let sparsityControl = "alpha"
    static let resamplesDeadFeatures = true
    /// At Anthropic's 0.2 a resampled feature's pre-activation on its own input is about σ, so the training noise
    /// fires it at random, the L1 term pushes b_enc down and it dies again: on synthetic data (ResamplingTests, σ = 1,
    /// norm 1) resampling at 0.2 raised the noise-free dead fraction 0.62 → 0.84; at 1 (the alive rows' own scale)
    /// it lowered it to 0.09. At scale 1 with b_enc 0 the new feature fires on half of all inputs with large codes
    /// (demo part 2's layer-0 MSE jumped 15 → 440 after a resampling); a bias of half its pre-activation on its own
    /// input keeps it to inputs near that one (norm 4, ResamplingTests: dead 0.39 → 0.21, MMCS 0.82 → 0.89,
    /// explained variance 0.61 → 0.67, where q = 0 gave 0.18, 0.82, 0.59; q = 0.3 and 0.7 were close to 0.5).
    static let resampledEncoderScale: Float = 1
    static let resampledSelectivity: Float = 0.5
    static let codeSaturates = true
    static let hasDenseStep = true
    static let decoderConstraint = DecoderConstraint.none
    /// SAELens 6 has no tanh-relu architecture: the folder is nsae's own and SAELens refuses it by name.
    static let saelensArchitecture = "nsae"

    static func set(_ option: String, _ value: SAEOptionSetting, in config: inout SAEConfig) throws {
        switch (option, value) {
        case ("sigma", .number(let v)):
            guard v >= 0, v.isFinite else { throw SAEError("sigma must be ≥ 0, got \(v)") }
            config.sigma = Float(v)
        case ("noise", .word(let w)):
            guard let mode = NoiseMode(rawValue: w) else { throw SAEError("noise must be train or always, got \(w)") }
            config.noise = mode
        case ("beta", .word(let w)):
            guard let mode = BetaMode(rawValue: w) else { throw SAEError("beta must be batch or layer, got \(w)") }
            config.beta = mode
        default: try config.setCommonL1Option(option, value)
        }
    }
    static let defaultAlpha: Float = 1e-6

    static func validate(_ config: SAEConfig) throws {
        guard config.sigma.isFinite, config.sigma >= 0 else { throw SAEError("SAE config: sigma must be finite and ≥ 0, got \(config.sigma)") }
        if config.beta == .layer {
            guard let n = config.layerMeanNorm, n.isFinite, n > 0 else {
                throw SAEError("SAE config: beta=layer needs a positive layerMeanNorm (the layer's mean ‖x‖)")
            }
        }
    }

    static func noiseSigma(_ config: SAEConfig, training: Bool) -> Float? {
        config.sigma > 0 && (training || config.noise == .always) ? config.sigma : nil
    }

    static func sparsityWeight(_ config: SAEConfig, meanInputNorm: Double) -> Double {
        let norm = config.beta == .layer ? Double(config.layerMeanNorm ?? 1) : meanInputNorm
        return Double(config.alpha) * norm * norm
    }

    @inline(__always)
    static func activateRow(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream,
                            _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>, dense: Bool) -> Int {
        let found = context.sigma.map {
            ActivationRows.positiveWithNoise(p, context.bEnc, context.m, $0, context.noiseEdge, &rng, feature, value, dense: dense)
        } ?? ActivationRows.positive(p, context.bEnc, context.m, feature, value, dense: dense)
        for e in 0..<found {
            let c = Foundation.tanhf(value[e])
            value[e] = c
            if dense { p[Int(feature[e])] = c }
        }
        return found
    }

    @inline(__always)
    static func activateRowDense(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream) {
        if let sigma = context.sigma {
            ActivationRows.positiveWithNoiseDense(p, context.bEnc, context.m, sigma, context.noiseEdge, &rng)
        } else {
            ActivationRows.positiveDense(p, context.bEnc, context.m)
        }
        for j in 0..<context.m where p[j] > 0 { p[j] = Foundation.tanhf(p[j]) }
    }

    /// d tanh(u)/du = 1 − tanh(u)².
    @inline(__always) static func slope(ofCode c: Float) -> Float { 1 - c * c }
    @inline(__always) static func slope(ofCodes c: SIMD16<Float>) -> SIMD16<Float> { 1 - c * c }

    static func saelensFields(_ config: SAEConfig) -> [String: Any] {
        var cfg: [String: Any] = ["noise_sigma": Double(config.sigma), "noise_mode": config.noise.rawValue,
                                  "beta_mode": config.beta.rawValue]
        if let n = config.layerMeanNorm { cfg["layer_mean_norm"] = Double(n) }
        return cfg
    }

    static func readSAELens(_ cfg: SAELensConfigFields, _ config: inout SAEConfig) throws {
        config.sigma = Float(try cfg.number("noise_sigma") ?? 1)
        if let w = cfg.string("noise_mode") {
            guard let mode = NoiseMode(rawValue: w) else { throw cfg.refuse("noise_mode", "is not train or always") }
            config.noise = mode
        }
        if let w = cfg.string("beta_mode") {
            guard let mode = BetaMode(rawValue: w) else { throw cfg.refuse("beta_mode", "is not batch or layer") }
            config.beta = mode
        }
        config.layerMeanNorm = (try cfg.number("layer_mean_norm")).map(Float.init)
    }
}

extension SAEArchitecture {
    public static let nsae = SAEArchitecture(NSAEKind.self)
}

extension NSAEKind {
    static func saelensTraining(_ c: SAEConfig) throws -> SAELensTraining? {
        var fields: [(name: String, value: SAELensTraining.Value)] = [
            ("alpha", SAELensTraining.decimal(c.alpha)), ("noise_sigma", SAELensTraining.decimal(c.sigma)), ("noise_mode", .string(c.noise.rawValue)),
            ("beta_mode", .string(c.beta.rawValue)), ("mse", .string(c.mse.rawValue))]
        if c.beta == .layer, let n = c.layerMeanNorm { fields.append(("layer_mean_norm", SAELensTraining.decimal(n))) }
        return SAELensTraining(module: "nsae_saelens", className: "NSAETrainingConfig",
                               note: "nsae's NSAE: c = tanh(ReLU(W_enc(x − b_dec) + b_enc + ε)), β = α·(mean ‖x‖)² per batch",
                               fields: fields)
    }
}
