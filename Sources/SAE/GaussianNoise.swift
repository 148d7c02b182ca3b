// Exact N(0, σ²) pre-activation noise for the NSAE, drawn by inversion so the (rare) entries that can become
// active are the only ones that pay for an inverse-CDF evaluation.
//
// For each entry we draw a 32-bit uniform u and set ε = σ·Φ⁻¹(u). The entry is active iff p + ε > 0. A table of
// Φ⁻¹ at the bucket edges k/4096 bounds ε from above; when p + σ·Φ⁻¹((k+1)/4096) ≤ 0 the entry is inactive whatever
// u is inside its bucket, so ε is never computed. Otherwise Φ⁻¹(u) is evaluated exactly (Acklam's rational
// approximation, relative error < 1.2e-9, in Double). The samples are the same as computing every ε; only the
// work differs. Streams are seeded per block of rows so results do not depend on the thread count.
import Foundation
import Tensor

enum GaussianNoise {
    static let bucketBits = 12
    static let buckets = 1 << bucketBits

    /// upperEdge[k] = Φ⁻¹((k+1)/buckets); +∞ for the last bucket.
    static let upperEdge: [Float] = (0..<buckets).map { k in
        k == buckets - 1 ? Float.infinity : Float(inverseNormalCDF(Double(k + 1) / Double(buckets)))
    }

    /// Rows per independently seeded noise stream.
    static let rowsPerStream = 32

    /// The seed of stream `block` at a given step, from the SAE's seed: a pure function, so a resumed run draws
    /// the same noise as an uninterrupted one.
    static func streamSeed(base: UInt64, step: UInt64, block: Int) -> UInt64 {
        var z = base &+ 0x9E37_79B9_7F4A_7C15 &* (step &+ 1)
        z = (z ^ (z >> 31)) &* 0xBF58_476D_1CE4_E5B9
        z ^= UInt64(block) &* 0x94D0_49BB_1331_11EB
        z = (z ^ (z >> 29)) &* 0xD6E8_FEB8_6659_FD93
        return z ^ (z >> 32)
    }

    /// Φ⁻¹(p) for p in (0, 1) (Acklam). The coefficients are literals in the expressions, not arrays: an array
    /// read inside this per-entry function cost a bounds check each (the arithmetic, and so every sample, is the same).
    @inline(__always)
    static func inverseNormalCDF(_ p: Double) -> Double {
        @inline(__always) func tail(_ q: Double) -> Double {
            (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q
                - 2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00)
                / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q
                    + 3.754408661907416e+00) * q + 1)
        }
        let low = 0.02425
        if p < low { return tail((-2 * Foundation.log(p)).squareRoot()) }
        if p > 1 - low { return -tail((-2 * Foundation.log(1 - p)).squareRoot()) }
        return central(SIMD2(repeating: p - 0.5))[0]
    }

    /// Acklam's central region (|p − ½| ≤ ½ − 0.02425) lane by lane, q = p − ½: written once for the scalar Φ⁻¹
    /// (through a two-lane vector) and the eight-lane one, so both give the same value; plain IEEE operations in this
    /// order (Swift does not contract them into FMAs).
    @inline(__always)
    static func central<V: SIMD>(_ q: V) -> V where V.Scalar == Double {
        let r = q * q
        var numerator: V = -3.969683028665376e+01 * r + 2.209460984245205e+02
        numerator = numerator * r - 2.759285104469687e+02
        numerator = numerator * r + 1.383577518672690e+02
        numerator = numerator * r - 3.066479806614716e+01
        numerator = numerator * r + 2.506628277459239e+00
        var denominator: V = -5.447609879822406e+01 * r + 1.615858368580409e+02
        denominator = denominator * r - 1.556989798598866e+02
        denominator = denominator * r + 6.680131188771972e+01
        denominator = denominator * r - 1.328068155288572e+01
        denominator = denominator * r + 1
        return numerator * q / denominator
    }

    /// `inverseNormalCDF` of eight probabilities at once, the same value lane for lane: the central region as one
    /// eight-lane `central`, the tails (|p − ½| > ½ − 0.02425, 4.85% of draws) through the scalar function. Lanes
    /// outside `needed` are left unevaluated in the tails (their value is not used).
    @inline(__always)
    static func inverseNormalCDF(_ p: SIMD8<Double>, needed: SIMDMask<SIMD8<Int32>>) -> SIMD8<Double> {
        let low = 0.02425
        var value = central(p - 0.5)
        let tail = (p .< low) .| (p .> 1 - low)
        if any(tail) {
            for lane in 0..<8 where tail[lane] && needed[lane] { value[lane] = inverseNormalCDF(p[lane]) }
        }
        return value
    }

    /// The standard normal value of a 32-bit uniform draw (the midpoint of its 2⁻³² cell, so never 0 or 1).
    @inline(__always)
    static func normal(fromBits u: UInt32) -> Float {
        Float(inverseNormalCDF((Double(u) + 0.5) * (1.0 / 4_294_967_296.0)))
    }
}

/// SplitMix64: the noise stream's generator. Private to this module (rather than Tensor's RNG) so it is inlined
/// into the per-entry loop; one 64-bit draw gives the uniforms of two entries.
struct NoiseStream {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    @inline(__always) mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
