// JumpReLU (Rajamanoharan et al. 2024), as SAELens's JumpReLU training SAE in its "step" sparsity mode:
//   v = W_e(x − b_d) + b_e,  c_j = v_j · H(v_j − θ_j),  loss ‖x′ − x‖² + λ·(1/B)Σ_b Σ_j H(v_bj − θ_j)
// with per-feature thresholds θ ≥ 0 trained by the rectangle-kernel straight-through estimator of width ε
// (`bandwidth`): with K(u) = 1 for |u| < 1/2,
//   ∂L/∂θ_j = −(1/ε) Σ_b K((v_bj − θ_j)/ε) · (θ_j · ∂L/∂c_bj + λ/B),
// and no estimator gradient into v (SAELens's jumprelu_ste_to_input = false). θ is the parameter itself, clamped
// at 0 after each step (SAELens 6 dropped the log-threshold parameterization, issue #494), so a folder's θ = 0
// is represented exactly. The decoder is unconstrained, as in SAELens.
import Foundation
import Tensor

enum JumpReLUKind: SAEKind {
    static let name = "jumprelu"
    static let summary = "JumpReLU: c = v·H(v − θ) with learned per-feature θ (straight-through estimator), loss ‖x′ − x‖² + λ·L0"
    static let options = [
        SAEKindOption("l0_coefficient", .number, default: "1", "weight λ of the L0 penalty"),
        SAEKindOption("bandwidth", .number, default: "0.001", "width ε of the estimator's rectangle kernel"),
        SAEKindOption("threshold", .number, default: "0.001", "initial θ of every feature"),
    ]
    static let sparsityControl = "l0_coefficient"
    static let decoderConstraint = DecoderConstraint.none
    static let saelensArchitecture = "jumprelu"
    static let extraParameters = [SAEExtraParameter("threshold") { Float($0.options["threshold"] ?? 0.001) }]

    static func applyDefaults(_ config: inout SAEConfig) {
        if config.options["l0_coefficient"] == nil { config.options["l0_coefficient"] = 1 }
        if config.options["bandwidth"] == nil { config.options["bandwidth"] = 0.001 }
        if config.options["threshold"] == nil { config.options["threshold"] = 0.001 }
    }

    static func validate(_ config: SAEConfig) throws {
        guard config.option("l0_coefficient") >= 0 else { throw SAEError("SAE config: l0_coefficient must be ≥ 0, got \(config.option("l0_coefficient"))") }
        guard config.option("bandwidth") > 0 else { throw SAEError("SAE config: bandwidth must be positive, got \(config.option("bandwidth"))") }
        guard config.option("threshold") >= 0 else { throw SAEError("SAE config: threshold must be ≥ 0, got \(config.option("threshold"))") }
    }

    @inline(__always)
    static func activateRow(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream,
                            _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>, dense: Bool) -> Int {
        ActivationRows.aboveThresholds(p, context.bEnc, context.extra!, context.m, feature, value, dense: dense)
    }

    static func finishStep(_ ws: StepWorkspace, _ sae: SAE, needGradients: Bool) {
        guard ws.training, ws.rows > 0 else { return }
        let lambda = sae.config.option("l0_coefficient")
        let l0Term = lambda * ws.terms.l0
        ws.terms.auxTerm += l0Term
        ws.terms.loss += l0Term
        guard needGradients else { return }
        ws.gradExtra = [ThresholdEstimator.gradient(ws, sae, thresholds: sae.extraParameters[0],
                                                    bandwidth: Float(sae.config.option("bandwidth")), lambda: lambda)]
    }

    static func afterStep(_ ws: StepWorkspace, _ sae: SAE) {
        sae.extraParameters[0].withUnsafeMutableBufferPointer { t in for j in t.indices where t[j] < 0 { t[j] = 0 } }
    }

    static func saelensTensors(_ sae: SAE) -> [(String, [Float])] { [("threshold", sae.extraParameters[0])] }

    static func readSAELensTensors(_ tensors: (String) throws -> [Float]?, _ config: inout SAEConfig) throws -> [[Float]] {
        guard let t = try tensors("threshold") else { throw SAEError("load sae: a jumprelu folder needs the tensor threshold [d_sae]") }
        return [t]
    }
}

extension SAEArchitecture {
    public static let jumprelu = SAEArchitecture(JumpReLUKind.self)
}

/// The rectangle-kernel straight-through estimate of ∂L/∂θ for per-feature thresholds on v = pre + b_enc.
enum ThresholdEstimator {
    /// −(1/ε) Σ_b K((v_bj − θ_j)/ε) · (θ_j · (dx_b · W_dec[j]) + λ/B), over every (b, j) inside the band.
    static func gradient(_ ws: StepWorkspace, _ sae: SAE, thresholds: [Float], bandwidth: Float, lambda: Double) -> [Float] {
        let B = ws.rows, n = ws.dIn, m = ws.dSAE
        let workers = min(Parallel.workers(forWork: B * m), max(1, B / 8))
        let parts = UnsafeMutablePointer<Double>.allocate(capacity: workers * m)
        parts.initialize(repeating: 0, count: workers * m)
        defer { parts.deallocate() }
        let pre = ws.pre.base, dx = ws.dx.base
        let half = bandwidth / 2, l0Grad = lambda / Double(B)
        thresholds.withUnsafeBufferPointer { theta in
            sae.b_enc.withUnsafeBufferPointer { benc in
                sae.W_dec.data.withUnsafeBufferPointer { wd in
                    Parallel.run(workers) { w in
                        let acc = parts + w * m
                        for b in Parallel.slice(B, part: w, of: workers) {
                            let p = pre + b * m, g = dx + b * n
                            for j in 0..<m {
                                let u = p[j] + benc[j] - theta[j]
                                guard u > -half && u < half else { continue }
                                let dc = Double(Vec.dot(g, wd.baseAddress! + j * n, n))
                                acc[j] -= (Double(theta[j]) * dc + l0Grad) / Double(bandwidth)
                            }
                        }
                    }
                }
            }
        }
        return (0..<m).map { j in Float((0..<workers).reduce(0.0) { $0 + parts[$1 * m + j] }) }
    }
}

extension JumpReLUKind {
    static func saelensTraining(_ c: SAEConfig) throws -> SAELensTraining? {
        try SAELensTraining.requireSummedMSE(c)
        return SAELensTraining(className: "JumpReLUTrainingSAEConfig", note: "JumpReLU, step L0 penalty",
                               fields: [try SAELensTraining.option(c, "l0_coefficient", as: "l0_coefficient"),
                                        try SAELensTraining.option(c, "bandwidth", as: "jumprelu_bandwidth", default: 0.001),
                                        try SAELensTraining.option(c, "threshold", as: "jumprelu_init_threshold", default: 0.001)])
    }
}
