// SAE architectures as registered types.
//
// Adding an architecture (the recipe):
//   1. Write Sources/SAE/Kinds/<Name>Kind.swift: an `enum <Name>Kind: SAEKind` giving its name and aliases, its
//      help text and options (with defaults and validation) and which option controls sparsity, its decoder constraint, its sparsity weight, its
//      per-row activation (`activateRow`, which must write the active entries in ascending feature order) and
//      code slope, any parameters beyond W_enc/b_enc/W_dec/b_dec (`extraParameters`, with their gradient in
//      `extraGradients`), a whole-batch pass if it needs one (`prepareBatch`), its auxiliary loss if any, and its
//      SAELens cfg.json fields both ways (`saelensFields` / `readSAELens`). Add `extension SAEArchitecture {
//      public static let <name> = SAEArchitecture(<Name>Kind.self) }` in the same file.
//   2. Add `<Name>Kind.self` to `SAERegistry.kinds` below: the one registration line.
//   3. Tests: finite differences of its backward (Tests/SAETests/GradientTests style), its SAELens round trip, its
//      refusals with their messages.
// Everything else (trainer, the step's hot loops, Adam state and checkpoints over the parameter list, SAELens I/O,
// the codes used by `top`/`feature`, the `sae` verb's kinds, options, help and completion) reads the registry.
// The hot loops are generic over the kind (`StepWorkspace.forward<K>`), so each kind's activation is specialised
// at compile time rather than dispatched per element.
import Foundation
import Tensor

/// What an architecture's option accepts (the `sae` verb maps this onto its own parameter kinds).
public enum SAEOptionValue: Sendable, Equatable {
    case number
    case integer
    case word([String])
}

/// One option of the `sae` verb that belongs to an architecture.
public struct SAEKindOption: Sendable {
    public let name: String
    public let value: SAEOptionValue
    public let defaultText: String
    public let help: String
    public init(_ name: String, _ value: SAEOptionValue, default defaultText: String, _ help: String) {
        self.name = name; self.value = value; self.defaultText = defaultText; self.help = help
    }
}

/// A parameter of an architecture beyond W_enc, b_enc, W_dec and b_dec: one value per feature.
public struct SAEExtraParameter: Sendable {
    /// The name in checkpoints (the trained form, e.g. log_threshold).
    public let name: String
    public let initialValue: @Sendable (SAEConfig) -> Float
    public init(_ name: String, initialValue: @escaping @Sendable (SAEConfig) -> Float) {
        self.name = name; self.initialValue = initialValue
    }
}

/// A value given to an architecture's option.
public enum SAEOptionSetting: Sendable, Equatable {
    case number(Double)
    case word(String)
}

/// How the decoder is constrained after each step.
public enum DecoderConstraint: Sendable, Equatable {
    /// Each decoder row's gradient loses its component along the row, and the row is renormalized after the step.
    case unitNorm
    case none
}

/// Everything one row's activation needs, handed to the kind's `activateRow`.
struct ActivationContext {
    let bEnc: UnsafePointer<Float>
    let m: Int
    let config: SAEConfig
    /// The noise scale, when this forward draws noise.
    let sigma: Float?
    let noiseEdge: UnsafePointer<Float>
    /// Per-feature values from the kind's `featureValues` (e.g. JumpReLU's θ), when it has them.
    let extra: UnsafePointer<Float>?
    /// The kind's whole-batch value from `prepareBatch` (BatchTopK's threshold), when training.
    let batchValue: Float?
    let training: Bool
}

/// The SAELens cfg.json an architecture reads from, with the lookups every kind needs.
public struct SAELensConfigFields {
    public let path: String
    public let fields: [String: Any]
    public let metadata: [String: Any]
    /// The key as the file spells it, for fields read under SAELens 6's name (activation_fn_str → activation_fn).
    public var spelledAs: [String: String] = [:]
    public init(path: String, fields: [String: Any], metadata: [String: Any], spelledAs: [String: String] = [:]) {
        self.path = path; self.fields = fields; self.metadata = metadata; self.spelledAs = spelledAs
    }
    public func value(_ key: String) -> Any? { fields[key] ?? metadata[key] }
    public func string(_ key: String) -> String? { value(key) as? String }

    /// An error naming the file, field and value.
    public func refuse(_ key: String, _ why: String) -> SAEError {
        SAEError("load sae: \(path): \(spelledAs[key] ?? key) = \(describe(value(key))) \(why)")
    }

    /// A float field, refused when present but not a finite number.
    public func number(_ key: String) throws -> Double? {
        guard let v = value(key), !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, !Self.isBool(n), n.doubleValue.isFinite else {
            throw refuse(key, "is not a finite number")
        }
        return n.doubleValue
    }

    /// An integer field, refused when present but not a whole number that fits an Int (16.7, 1e30, "8", true).
    public func integer(_ key: String) throws -> Int? {
        guard let v = value(key), !(v is NSNull) else { return nil }
        // Strict: a JSON integer literal only (16.7, 16.0, 1e30, "16" and true are refused, never rounded or wrapped).
        guard let n = v as? NSNumber, !Self.isBool(n), !["d", "f"].contains(String(cString: n.objCType)) else {
            throw refuse(key, "is not an integer")
        }
        guard let i = Int(exactly: n.int64Value), NSNumber(value: n.int64Value) == n else {
            throw refuse(key, "is not an integer nsae can represent")
        }
        return i
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = value(key), !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, Self.isBool(n) else { throw refuse(key, "is not true or false") }
        return n.boolValue
    }

    /// JSON true/false (JSONSerialization gives them the objCType of a C char).
    static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    func describe(_ v: Any?) -> String {
        switch v {
        case nil: return "(missing)"
        case let s as String: return "'\(s)'"
        case let n as NSNumber: return Self.isBool(n) ? (n.boolValue ? "true" : "false") : "\(n)"
        case let v?:
            if let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]) {
                return String(decoding: data, as: UTF8.self)
            }
            return "\(v)"
        }
    }
}

/// An SAE architecture. Conforming types are caseless enums: everything is static, so the step's loops, generic
/// over the kind, are specialised per architecture.
protocol SAEKind: Sendable {
    /// The name `sae KIND` and checkpoints use.
    static var name: String { get }
    /// Other names accepted by the registry (SAELens's names among them).
    static var aliases: [String] { get }
    /// One line for `help sae`.
    static var summary: String { get }
    /// The architecture's own options of `sae`, beyond the common ones (layers, expansion, mse, init, seed).
    static var options: [SAEKindOption] { get }
    /// The name of the option (one of `options`) that sets how sparse the codes are: the grid of a `sweep`.
    static var sparsityControl: String { get }
    /// Sets one of `options` from the `sae` verb (the default stores numbers in `config.options`).
    static func set(_ option: String, _ value: SAEOptionSetting, in config: inout SAEConfig) throws
    /// α when the user gives none (NaN marks "not given"); 0 for architectures without an L1 term.
    static var defaultAlpha: Float { get }
    /// Fills defaults into `config.options` for the options the user did not give (given `dIn`, `dSAE`).
    static func applyDefaults(_ config: inout SAEConfig)
    /// Throws a message naming the bad field.
    static func validate(_ config: SAEConfig) throws
    static var decoderConstraint: DecoderConstraint { get }
    /// Whether `train resample_every=N` resamples its dead features (the L1-penalised kinds; TopK has AuxK).
    static var resamplesDeadFeatures: Bool { get }
    /// A resampled feature's encoder row norm, as a multiple of the alive rows' mean norm (Anthropic's 0.2).
    static var resampledEncoderScale: Float { get }
    /// A resampled feature's b_enc as a fraction q of its pre-activation on the input it was given: −q·(W_enc[j]·v),
    /// so it fires only where inputs project onto v at least q times as much (Anthropic's b_enc = 0 is q = 0).
    static var resampledSelectivity: Float { get }
    /// Whether the code saturates (NSAE's tanh reaches 1.0 in float32 near pre-activation 9), so that top
    /// activations tie and are ranked by the pre-activation instead (`SAE.preActivationEncoder`).
    static var codeSaturates: Bool { get }
    /// Whether feature j's evaluation-time code depends only on its own pre-activation and parameters, so a scan of
    /// some features may encode just those (ScanEncoder.swift, where the kinds that do say so).
    static var codesArePerFeature: Bool { get }
    /// Whether the step may take the dense path (DenseStep.swift) when a batch's codes are dense: the L1 kinds,
    /// whose density is not fixed. Such a kind has no auxiliary entries and its `finishStep` needs no
    /// per-feature lists.
    static var hasDenseStep: Bool { get }
    static var extraParameters: [SAEExtraParameter] { get }
    /// The noise scale of a forward pass, or nil for none.
    static func noiseSigma(_ config: SAEConfig, training: Bool) -> Float?
    /// The weight β of the L1 term (1/B)Σ‖c‖₁ in the loss; 0 when the architecture has no L1 penalty.
    static func sparsityWeight(_ config: SAEConfig, meanInputNorm: Double) -> Double
    /// A pass over the whole batch's pre-activations (pre [B, m], without b_enc) before the rows are activated.
    static func prepareBatch(_ pre: UnsafePointer<Float>, rows: Int, context: ActivationContext) -> Float?
    /// Writes one row's active entries (ascending features) into `feature`/`value` (room for m) and returns how
    /// many. `p` is the row's pre-activation without b_enc; with `dense`, `p` must hold the row's codes afterwards.
    static func activateRow(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream,
                            _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>, dense: Bool) -> Int
    /// dc/dpre at an active entry, from its code c.
    static func slope(ofCode c: Float) -> Float
    /// `slope(ofCode:)` lane by lane (the dense step's dL/dpre pass); must give the scalar's numbers.
    static func slope(ofCodes c: SIMD16<Float>) -> SIMD16<Float>
    /// For the kinds with a dense step: writes one row's codes over `p` (its pre-activation without b_enc), zeros
    /// where inactive, with the numbers and noise draws of `activateRow` and without building its entry list.
    static func activateRowDense(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream)
    /// After the decode (dx known): adds the kind's own loss terms and gradients (AuxK, JumpReLU's θ and L0).
    static func finishStep(_ ws: StepWorkspace, _ sae: SAE, needGradients: Bool)
    /// After a training step's update: the kind's own state (a clamp, BatchTopK's threshold estimate).
    static func afterStep(_ ws: StepWorkspace, _ sae: SAE)
    /// Per-feature values the activation reads through `ActivationContext.extra` (JumpReLU's θ), if any.
    static func featureValues(_ sae: SAE, training: Bool) -> [Float]?
    /// The architecture fields of cfg.json that SAELens 6 reads for this kind.
    static func saelensFields(_ config: SAEConfig) -> [String: Any]
    /// The name of `architecture` in the SAELens folder.
    static var saelensArchitecture: String { get }
    /// Extra tensors of sae_weights.safetensors beyond W_enc, b_enc, W_dec, b_dec, as SAELens names them.
    static func saelensTensors(_ sae: SAE) -> [(String, [Float])]
    /// Reads the kind's fields from a SAELens folder into the config; then its extra tensors (returned in
    /// `extraParameters` order; a kind may also set config options from them).
    static func readSAELens(_ cfg: SAELensConfigFields, _ config: inout SAEConfig) throws
    static func readSAELensTensors(_ tensors: (String) throws -> [Float]?, _ config: inout SAEConfig) throws -> [[Float]]
    /// How SAELens 6 trains the same SAE (`export`), or nil when it has no training configuration for the kind.
    static func saelensTraining(_ config: SAEConfig) throws -> SAELensTraining?
}

extension SAEKind {
    static var aliases: [String] { [] }
    static var defaultAlpha: Float { 0 }
    static var resamplesDeadFeatures: Bool { false }
    static var resampledEncoderScale: Float { 0.2 }
    static var resampledSelectivity: Float { 0 }
    static func saelensTraining(_ config: SAEConfig) throws -> SAELensTraining? { nil }
    static var codeSaturates: Bool { false }
    static var codesArePerFeature: Bool { false }
    static var hasDenseStep: Bool { false }
    static func applyDefaults(_ config: inout SAEConfig) {}
    static func set(_ option: String, _ value: SAEOptionSetting, in config: inout SAEConfig) throws {
        guard let spec = options.first(where: { $0.name == option }) else {
            throw SAEError("\(name) has no option \(option); its options: \(options.map(\.name).joined(separator: ", "))")
        }
        guard case .number(let v) = value else { throw SAEError("\(option) must be a number") }
        if spec.value == .integer, v != v.rounded() || abs(v) > 1e15 {
            throw SAEError("\(option) must be a whole number, got \(v)")
        }
        config.options[option] = v
    }
    static func validate(_ config: SAEConfig) throws {}
    static var extraParameters: [SAEExtraParameter] { [] }
    static func noiseSigma(_ config: SAEConfig, training: Bool) -> Float? { nil }
    static func sparsityWeight(_ config: SAEConfig, meanInputNorm: Double) -> Double { 0 }
    static func prepareBatch(_ pre: UnsafePointer<Float>, rows: Int, context: ActivationContext) -> Float? { nil }
    @inline(__always) static func slope(ofCode c: Float) -> Float { 1 }
    @inline(__always) static func slope(ofCodes c: SIMD16<Float>) -> SIMD16<Float> {
        var s = SIMD16<Float>()
        for q in 0..<16 { s[q] = slope(ofCode: c[q]) }
        return s
    }
    static func activateRowDense(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream) {
        preconditionFailure("\(name) has no dense step (hasDenseStep is false)")
    }
    static func finishStep(_ ws: StepWorkspace, _ sae: SAE, needGradients: Bool) {}
    static func afterStep(_ ws: StepWorkspace, _ sae: SAE) {}
    static func featureValues(_ sae: SAE, training: Bool) -> [Float]? { sae.extraParameters.first }
    static func saelensFields(_ config: SAEConfig) -> [String: Any] { [:] }
    static func saelensTensors(_ sae: SAE) -> [(String, [Float])] { [] }
    static func readSAELens(_ cfg: SAELensConfigFields, _ config: inout SAEConfig) throws {}
    static func readSAELensTensors(_ tensors: (String) throws -> [Float]?, _ config: inout SAEConfig) throws -> [[Float]] { [] }
}

/// An architecture: a registered kind, compared and stored by name.
public struct SAEArchitecture: Hashable, Sendable, Codable, CustomStringConvertible, CaseIterable {
    let kind: any SAEKind.Type
    init(_ kind: any SAEKind.Type) { self.kind = kind }

    public var name: String { kind.name }
    public var rawValue: String { kind.name }
    public var description: String { kind.name }
    public static func == (a: Self, b: Self) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }

    /// Every registered architecture, in registration order.
    public static var allCases: [SAEArchitecture] { SAERegistry.kinds.map(SAEArchitecture.init) }

    public init(from decoder: Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let kind = SAERegistry.kinds.first(where: { $0.name == name }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "unknown SAE architecture '\(name)'; valid names: \(SAERegistry.names.joined(separator: ", "))"))
        }
        self.kind = kind
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }

    public var decoderConstraint: DecoderConstraint { kind.decoderConstraint }
    public var aliases: [String] { kind.aliases }
    public var resamplesDeadFeatures: Bool { kind.resamplesDeadFeatures }
    public var summary: String { kind.summary }
    /// The architecture's own options of `sae`.
    public var options: [SAEKindOption] { kind.options }
    /// The option that sets the codes' sparsity (α, k, the L0 coefficient): what a sweep varies.
    public var sparsityControl: SAEKindOption {
        guard let option = kind.options.first(where: { $0.name == kind.sparsityControl }) else {
            preconditionFailure("\(name): its sparsity control \(kind.sparsityControl) is not one of its options")
        }
        return option
    }
    /// The `architecture` value of its SAELens folders.
    public var saelensName: String { kind.saelensArchitecture }
    /// How SAELens 6 trains an SAE of this config (`export`), or nil when SAELens has none for the kind.
    public func saelensTraining(_ config: SAEConfig) throws -> SAELensTraining? { try kind.saelensTraining(config) }

    /// Sets one of the architecture's options, with an error naming the option when it is not one of them.
    public func set(_ option: String, _ value: SAEOptionSetting, in config: inout SAEConfig) throws {
        guard options.contains(where: { $0.name == option }) else {
            throw SAEError("\(name) has no option \(option); its options: \(options.map(\.name).joined(separator: ", "))")
        }
        try kind.set(option, value, in: &config)
    }

    /// Fills in the defaults of every option not given (α given as NaN means "not given").
    public func applyDefaults(_ config: inout SAEConfig) {
        if config.alpha.isNaN { config.alpha = kind.defaultAlpha }
        kind.applyDefaults(&config)
    }
}

/// Architectures by name, as the command language and SAELens cfg.json spell them.
public enum SAERegistry {
    /// The registration list: one line per architecture.
    static let kinds: [any SAEKind.Type] = [
        ReLUKind.self,
        NSAEKind.self,
        TopKKind.self,
        JumpReLUKind.self,
        BatchTopKKind.self,
    ]

    /// Every architecture, in registration order.
    public static var architectures: [SAEArchitecture] { SAEArchitecture.allCases }

    /// Names accepted by `make`.
    public static var names: [String] { kinds.map { $0.name } }

    public static func architecture(named name: String) throws -> SAEArchitecture {
        let key = name.lowercased()
        guard let kind = kinds.first(where: { $0.name == key || $0.aliases.contains(key) }) else {
            throw SAEError("unknown SAE architecture '\(name)'; valid names: \(names.joined(separator: ", "))")
        }
        return SAEArchitecture(kind)
    }

    /// A freshly initialized SAE of the named architecture; `options` are the architecture's own options
    /// (defaults filled in by the kind).
    public static func make(_ name: String, dIn: Int, dSAE: Int, alpha: Float, sigma: Float = 1,
                            noise: NoiseMode = .train, mse: MSEMode = .sum, beta: BetaMode = .batch,
                            layerMeanNorm: Float? = nil, seed: UInt64 = 1, hookName: String? = nil,
                            hookLayer: Int? = nil, modelName: String? = nil, options: [String: Double] = [:]) throws -> SAE {
        var config = SAEConfig(architecture: try architecture(named: name), dIn: dIn, dSAE: dSAE, alpha: alpha,
                               sigma: sigma, noise: noise, mse: mse, beta: beta, layerMeanNorm: layerMeanNorm,
                               seed: seed, hookName: hookName, hookLayer: hookLayer, modelName: modelName)
        config.options = options
        config.architecture.applyDefaults(&config)
        return try SAE(config: config)
    }
}

/// A SAELens 6 training configuration for one SAE: the config class to import and the fields the architecture
/// sets on it (the common ones, d_in and d_sae, are the exporter's).
public struct SAELensTraining: Sendable {
    public enum Value: Sendable, Equatable { case number(Double), string(String) }
    public let module: String
    public let className: String
    /// One line on what the SAELens run trains and where it differs from nsae's.
    public let note: String
    public let fields: [(name: String, value: Value)]

    init(module: String = "sae_lens", className: String, note: String, fields: [(name: String, value: Value)]) {
        self.module = module; self.className = className; self.note = note; self.fields = fields
    }

    /// A Float option as the decimal the user wrote (1e-3 rather than 0.0010000000474974513).
    static func decimal(_ value: Float) -> Value { .number(Double(value.description) ?? Double(value)) }

    /// The architecture option `name` as the SAELens field `field`, or the SAELens default when it is not set.
    static func option(_ c: SAEConfig, _ name: String, as field: String, default fallback: Double? = nil) throws -> (name: String, value: Value) {
        guard let v = c.options[name] ?? fallback else { throw SAEError("export: the \(c.architecture.name) SAE has no \(name)") }
        return (field, .number(v))
    }

    /// SAELens's own architectures sum the squared error over dimensions, as nsae's mse=sum.
    static func requireSummedMSE(_ c: SAEConfig) throws {
        guard c.mse == .sum else {
            throw SAEError("export: mse=mean has no SAELens equivalent for a \(c.architecture.name) SAE (only the nsae architecture takes it)")
        }
    }
}
