/// exp and GELU for the forward pass without libm calls. libm's expf/tanhf are opaque scalar calls; at GPT-2 small's
/// sizes the GELU alone would take a large share of a forward through them. This is Cephes' expf (range reduction by
/// ln 2, degree-5 polynomial, ~1 ulp) written as straight-line scalar code with wrapping integer ops, so the
/// optimizer vectorizes the loops that call it, and debug builds (tests) stay reasonably fast too.
enum FastMath {
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let c = min(max(x, -87.3), 88.3)  // keeps 2^n a normal float: n in −126…127
        // Round c·log2(e) to the nearest integer n by adding 1.5·2^23: n lands in the low mantissa bits.
        let magic: Float = 12_582_912
        let t = c * 1.442_695_04 + magic
        let n = t - magic
        let ni = Int32(bitPattern: t.bitPattern &- magic.bitPattern)
        var r = c - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let y = p * (r * r) + r + 1
        return y * Float(bitPattern: UInt32(bitPattern: (ni &+ 127) &<< 23))
    }

    /// x[i] ← exp(x[i] − shift); returns Σ exp.
    static func expShiftedSum(_ x: UnsafeMutablePointer<Float>, count n: Int, shift: Float) -> Float {
        for i in 0..<n { x[i] = exp(x[i] - shift) }
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var i = 0
        while i + 4 <= n { s0 += x[i]; s1 += x[i + 1]; s2 += x[i + 2]; s3 += x[i + 3]; i += 4 }
        while i < n { s0 += x[i]; i += 1 }
        return (s0 + s1) + (s2 + s3)
    }

    /// GELU (tanh approximation) in place: 0.5·x·(1 + tanh(u)) = x / (1 + exp(−2u)), u = √(2/π)·(x + 0.044715·x³).
    static func gelu(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { x[i] = gelu(x[i]) }
    }

    @inline(__always)
    static func gelu(_ v: Float) -> Float {
        let u = v * (0.797_884_56 + 0.035_677_41 * (v * v))
        return v / (1 + exp(-2 * u))
    }
}
