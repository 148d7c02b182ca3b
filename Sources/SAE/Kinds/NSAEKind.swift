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
        PositiveTanh.apply(value, found)
        if dense { for e in 0..<found { p[Int(feature[e])] = value[e] } }
        return found
    }

    @inline(__always)
    static func activateRowDense(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream) {
        if let sigma = context.sigma {
            ActivationRows.positiveWithNoiseDense(p, context.bEnc, context.m, sigma, context.noiseEdge, &rng)
        } else {
            ActivationRows.positiveDense(p, context.bEnc, context.m)
        }
        PositiveTanh.applyWherePositive(p, context.m)
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

/// tanh of positive float32 inputs, eight at a time: libm's tanhf, one call per active entry, was ~10% of the
/// nsae step's samples at half the features active (2100 of 20280 perf samples, three 768→6144 dense steps).
/// Evaluated in double, (1 − e)/(1 + e) with e = exp(−2x) (Cody–Waite reduction, degree-11 Taylor polynomial:
/// relative error ~1e-14 before the rounding to float, so the result is the correctly rounded tanh but for inputs
/// within ~1e-14 of a rounding boundary), and x − x³/3 below 1e-4 (so a tiny positive input keeps a positive code).
/// Every nsae code goes through it (the entry list, the dense codes, the scans' `codes`), so the paths agree.
enum PositiveTanh {
    @inline(__always)
    static func of(_ input: SIMD8<Float>) -> SIMD8<Float> {
        let x = SIMD8<Double>(input)
        let y = -2 * x.replacing(with: 20, where: x .> 20)
        let log2e = 1.4426950408889634, ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10
        let k = (y * log2e).rounded(.toNearestOrEven)
        let r = (y - k * ln2Hi) - k * ln2Lo
        // e^r = Σ r^i / i!, i ≤ 11, by Estrin's scheme: four dependent levels instead of Horner's eleven, so the
        // eight lanes' chains overlap (a 768→6144 row at half active: 12.1 → 8.7 ns per active entry, same codes).
        let r2 = r * r, r4 = r2 * r2, r8 = r4 * r4
        let q0 = (1 + r) + r2 * (0.5 + r * 0.16666666666666666)   // 1/0! … 1/3!
        let q1 = (0.041666666666666664 + r * 0.008333333333333333) + r2 * (0.001388888888888889 + r * 0.0001984126984126984)
        let q2 = (2.48015873015873e-05 + r * 2.7557319223985893e-06) + r2 * (2.755731922398589e-07 + r * 2.505210838544172e-08)
        let p = (q0 + r4 * q1) + r8 * q2
        // 2^k from k's bits: k + 1.5·2⁵² holds k in its low mantissa bits (exact for |k| < 2⁵¹); SIMD8<Int64>(k)
        // was a generic per-lane conversion (its samples outnumbered the rest of the tanh).
        let shifter = SIMD8<Double>(repeating: 6755399441055744.0)
        let kBits = unsafeBitCast(k + shifter, to: SIMD8<Int64>.self) &- unsafeBitCast(shifter, to: SIMD8<Int64>.self)
        let scale = unsafeBitCast((kBits &+ 1023) &<< 52, to: SIMD8<Double>.self)
        let e = p * scale
        let large = (1 - e) / (1 + e)
        let small = x - x * x * x * (1.0 / 3)
        return SIMD8<Float>(large.replacing(with: small, where: x .< 1e-4))
    }

    @inline(__always) static func of(_ x: Float) -> Float { of(SIMD8<Float>(repeating: x))[0] }

    /// values[0..<n] ← tanh(values), every value positive.
    @inline(__always)
    static func apply(_ values: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { Vec.store(of(Vec.load(values + i)), values + i); i += 8 }
        while i < n { values[i] = of(values[i]); i += 1 }
    }

    /// row[0..<n] ← tanh(row) where row > 0 (the rest are zeros and stay so).
    @inline(__always)
    static func applyWherePositive(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = Vec.load(row + i)
            let on = v .> 0
            if any(on) { Vec.store(of(v).replacing(with: 0, where: .!on), row + i) }
            i += 8
        }
        while i < n { if row[i] > 0 { row[i] = of(row[i]) }; i += 1 }
    }
}
