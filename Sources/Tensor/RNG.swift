import Foundation

/// A seeded, reproducible random number generator (xoshiro256**, seeded through SplitMix64), independent of the
/// platform's `random()`: the same seed gives the same stream on every machine.
public struct RNG: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    private var spareNormal: Float?

    public init(seed: UInt64) {
        var sm = seed
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(&sm); s1 = splitmix(&sm); s2 = splitmix(&sm); s3 = splitmix(&sm)
        spareNormal = nil
    }

    @inlinable static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = RNG.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = RNG.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 bits of resolution.
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Uniform integer in 0..<n (unbiased, Lemire's method).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "RNG.int(below:) needs a positive bound")
        return Int(next(upperBound: UInt64(n)))
    }

    /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
    public mutating func normal() -> Float {
        if let s = spareNormal { spareNormal = nil; return s }
        var u1: Double
        repeat { u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) } while u1 <= 0
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = (-2.0 * Foundation.log(u1)).squareRoot()
        let theta = 2.0 * Double.pi * u2
        spareNormal = Float(r * Foundation.sin(theta))
        return Float(r * Foundation.cos(theta))
    }

    public mutating func normal(mean: Float, std: Float) -> Float { mean + std * normal() }

    /// Fills `buffer` with N(mean, std²) samples.
    public mutating func fillNormal(_ buffer: UnsafeMutableBufferPointer<Float>, mean: Float = 0, std: Float = 1) {
        for i in buffer.indices { buffer[i] = mean + std * normal() }
    }

    public mutating func fillNormal(_ array: inout [Float], mean: Float = 0, std: Float = 1) {
        array.withUnsafeMutableBufferPointer { fillNormal($0, mean: mean, std: std) }
    }

    public mutating func fillUniform(_ array: inout [Float], _ lo: Float, _ hi: Float) {
        for i in array.indices { array[i] = uniform(lo, hi) }
    }

    /// Fisher-Yates shuffle, reproducible for a given seed.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = int(below: i + 1)
            if i != j { array.swapAt(i, j) }
        }
    }

    /// A random permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }

    /// A matrix of N(0, std²) samples.
    public mutating func normalMatrix(_ rows: Int, _ cols: Int, std: Float = 1) -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        fillNormal(&m.data, std: std)
        return m
    }
}
