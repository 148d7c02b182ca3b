// The standard SAE: c = ReLU(W_e(x − b_d) + b_e), unit-norm decoder rows, loss ‖x′ − x‖² + α‖c‖₁ (design §3).
import Foundation

enum ReLUKind: SAEKind {
    static let name = "relu"
    static let aliases = ["standard"]
    static let summary = "standard: c = ReLU(W_e(x − b_d) + b_e), unit-norm decoder rows, loss ‖x′ − x‖² + α‖c‖₁"
    static let options = [SAEKindOption("alpha", .number, default: "1e-3", "L1 coefficient α")]
    static let sparsityControl = "alpha"
    static let resamplesDeadFeatures = true
    static let hasDenseStep = true
    static let decoderConstraint = DecoderConstraint.unitNorm
    static let saelensArchitecture = "standard"

    static func set(_ option: String, _ value: SAEOptionSetting, in config: inout SAEConfig) throws {
        try config.setCommonL1Option(option, value)
    }
    static let defaultAlpha: Float = 1e-3

    static func sparsityWeight(_ config: SAEConfig, meanInputNorm: Double) -> Double { Double(config.alpha) }

    @inline(__always)
    static func activateRow(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream,
                            _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>, dense: Bool) -> Int {
        ActivationRows.positive(p, context.bEnc, context.m, feature, value, dense: dense)
    }

    @inline(__always)
    static func activateRowDense(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream) {
        ActivationRows.positiveDense(p, context.bEnc, context.m)
    }
    @inline(__always) static func slope(ofCodes c: SIMD16<Float>) -> SIMD16<Float> { SIMD16(repeating: 1) }

    static func saelensFields(_ config: SAEConfig) -> [String: Any] { ["l1_coefficient": Double(config.alpha)] }
}

extension SAEArchitecture {
    public static let relu = SAEArchitecture(ReLUKind.self)
}

extension ReLUKind {
    static func saelensTraining(_ c: SAEConfig) throws -> SAELensTraining? {
        try SAELensTraining.requireSummedMSE(c)
        return SAELensTraining(className: "StandardTrainingSAEConfig",
                               note: "nsae's relu: L1 α‖c‖₁ with unit-norm decoder rows; SAELens weights the L1 by the decoder row norms instead",
                               fields: [("l1_coefficient", SAELensTraining.decimal(c.alpha))])
    }
}
