// Adam with linear lr warm-up and optional gradient-norm clipping, applied per SAE, one pass over each parameter
// row, reading that row's gradient from the step's dense gradient rows (StepWorkspace.gradDec/gradEnc, which both
// step paths fill and the layers of a group share).
import Foundation
import Tensor

public struct AdamConfig: Codable, Sendable, Equatable {
    public var lr: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    /// The lr ramps linearly from lr/warmupSteps at step 1 to lr at step warmupSteps (0 = no warm-up).
    public var warmupSteps: Int
    /// When set, each SAE's gradient is scaled so its global L2 norm is at most this.
    public var clipNorm: Float?

    public init(lr: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, warmupSteps: Int = 0,
                clipNorm: Float? = nil) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.warmupSteps = warmupSteps
        self.clipNorm = clipNorm
    }

    public func validate() throws {
        guard lr.isFinite, lr > 0 else { throw SAEError("Adam: lr must be positive, got \(lr)") }
        guard beta1 >= 0, beta1 < 1 else { throw SAEError("Adam: beta1 must be in [0, 1), got \(beta1)") }
        guard beta2 >= 0, beta2 < 1 else { throw SAEError("Adam: beta2 must be in [0, 1), got \(beta2)") }
        guard eps.isFinite, eps > 0 else { throw SAEError("Adam: eps must be positive, got \(eps)") }
        guard warmupSteps >= 0 else { throw SAEError("Adam: warmupSteps must be ≥ 0, got \(warmupSteps)") }
        if let c = clipNorm { guard c.isFinite, c > 0 else { throw SAEError("Adam: clipNorm must be positive, got \(c)") } }
    }

    /// The learning rate at (1-based) step t.
    public func learningRate(atStep t: Int) -> Float {
        warmupSteps > 0 && t < warmupSteps ? lr * Float(t) / Float(warmupSteps) : lr
    }
}

/// First and second moments for every parameter, in the SAE's internal layout, and the step count.
/// A class over one allocation so the fused update can reach it through plain pointers from several threads.
final class AdamState: @unchecked Sendable {
    // @unchecked Sendable: owned by one SAE and only touched by the thread that trains it.
    let dIn: Int, dSAE: Int
    /// Extra per-feature parameters of the architecture (their moments follow the others).
    let extraCount: Int
    var step = 0
    private let storage: UnsafeMutablePointer<Float>
    let mEnc, vEnc, mDec, vDec: UnsafeMutablePointer<Float>   // [dSAE, dIn] each, like encoderRows / W_dec
    let mBEnc, vBEnc: UnsafeMutablePointer<Float>             // [dSAE]
    let mBDec, vBDec: UnsafeMutablePointer<Float>             // [dIn]
    var totalCount: Int { Self.count(dIn: dIn, dSAE: dSAE, extraCount: extraCount) }
    static func count(dIn: Int, dSAE: Int, extraCount: Int) -> Int { 4 * dIn * dSAE + 2 * dSAE + 2 * dIn + 2 * extraCount * dSAE }

    init(dIn: Int, dSAE: Int, extraCount: Int = 0) {
        self.dIn = dIn; self.dSAE = dSAE; self.extraCount = extraCount
        let big = dIn * dSAE
        let total = Self.count(dIn: dIn, dSAE: dSAE, extraCount: extraCount)
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0, count: total)
        mEnc = storage; vEnc = storage + big; mDec = storage + 2 * big; vDec = storage + 3 * big
        mBEnc = storage + 4 * big; vBEnc = mBEnc + dSAE
        mBDec = vBEnc + dSAE; vBDec = mBDec + dIn
    }
    deinit { storage.deallocate() }

    /// The moments of extra parameter e ([dSAE] each), after the eight above.
    func mExtra(_ e: Int) -> UnsafeMutablePointer<Float> { vBDec + dIn + 2 * e * dSAE }
    func vExtra(_ e: Int) -> UnsafeMutablePointer<Float> { mExtra(e) + dSAE }

    /// All moments in one flat array (checkpoint order: mEnc, vEnc, mDec, vDec, mBEnc, vBEnc, mBDec, vBDec, then
    /// m and v of each extra parameter).
    var flat: [Float] { Array(UnsafeBufferPointer(start: storage, count: totalCount)) }

    convenience init(dIn: Int, dSAE: Int, extraCount: Int = 0, step: Int, flat: [Float]) throws {
        self.init(dIn: dIn, dSAE: dSAE, extraCount: extraCount)
        guard flat.count == totalCount else {
            throw SAEError("optimizer state has \(flat.count) values, expected \(totalCount) for d_in \(dIn), d_sae \(dSAE)")
        }
        flat.withUnsafeBufferPointer { storage.update(from: $0.baseAddress!, count: totalCount) }
        self.step = step
    }

    func copy() -> AdamState {
        let c = AdamState(dIn: dIn, dSAE: dSAE, extraCount: extraCount)
        c.storage.update(from: storage, count: totalCount)
        c.step = step
        return c
    }
}

/// The scalars of one Adam step: p −= stepSize·m / (√v · invSqrtBias2 + eps), after m, v take the gradient.
struct AdamStepScalars {
    let beta1: Float, beta2: Float, eps: Float
    let stepSize: Float       // lr_t / (1 − β1^t)
    let invSqrtBias2: Float   // 1 / √(1 − β2^t)
    let gradScale: Float      // clipping factor (1 when not clipping)

    init(_ config: AdamConfig, step t: Int, gradScale: Float) {
        beta1 = config.beta1; beta2 = config.beta2; eps = config.eps
        let bias1 = 1 - Foundation.pow(Double(config.beta1), Double(t))
        let bias2 = 1 - Foundation.pow(Double(config.beta2), Double(t))
        stepSize = Float(Double(config.learningRate(atStep: t)) / bias1)
        invSqrtBias2 = Float(1 / bias2.squareRoot())
        self.gradScale = gradScale
    }

    /// Updates n parameters from their gradients in one pass.
    @inline(__always)
    func apply(_ p: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
               _ g: UnsafePointer<Float>, _ n: Int) {
        let b1 = beta1, b2 = beta2, c1 = 1 - beta1, c2 = 1 - beta2, s = stepSize, ib = invSqrtBias2, e = eps, gs = gradScale
        // Eight lanes at a time with the scalar loop's operations in its order (IEEE sqrt and division per lane), so
        // the numbers are the scalar loop's; the compiler left that loop scalar (vsqrtss/vdivss, perf annotate).
        var i = 0
        let vb1 = SIMD8<Float>(repeating: b1), vb2 = SIMD8<Float>(repeating: b2), vc1 = SIMD8<Float>(repeating: c1)
        let vc2 = SIMD8<Float>(repeating: c2), vs = SIMD8<Float>(repeating: s), vib = SIMD8<Float>(repeating: ib)
        let ve = SIMD8<Float>(repeating: e), vgs = SIMD8<Float>(repeating: gs)
        while i + 8 <= n {
            let gi = Vec.load(g + i) * vgs
            let mi = vb1 * Vec.load(m + i) + vc1 * gi
            let vi = vb2 * Vec.load(v + i) + vc2 * gi * gi
            Vec.store(mi, m + i); Vec.store(vi, v + i)
            Vec.store(Vec.load(p + i) - vs * mi / (vi.squareRoot() * vib + ve), p + i)
            i += 8
        }
        while i < n {
            defer { i += 1 }
            let gi = g[i] * gs
            let mi = b1 * m[i] + c1 * gi
            let vi = b2 * v[i] + c2 * gi * gi
            m[i] = mi; v[i] = vi
            p[i] -= s * mi / (vi.squareRoot() * ib + e)
        }
    }
}
