// Small vectorized loops the sparse training step leans on. Tensor's scalar `dot` keeps one accumulator (the
// compiler may not reorder a float reduction), so the dot products here use SIMD accumulators. They write
// a·x + y rather than SIMD.addingProduct: without FMA in the target (debug builds, baseline x86-64)
// addingProduct becomes a libm fmaf call per lane.
import Foundation
import Tensor

enum Vec {
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 32 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            acc1 += ra.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
            i += 32
        }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y += alpha·x
    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let a = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n {
            store(load(y + i) + a * load(x + i), y + i)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// y += a1·x1 + a2·x2: two independent row streams in flight, so gathers of scattered rows overlap.
    @inline(__always)
    static func axpy2(_ a1: Float, _ x1: UnsafePointer<Float>, _ a2: Float, _ x2: UnsafePointer<Float>,
                      _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let s1 = SIMD8<Float>(repeating: a1), s2 = SIMD8<Float>(repeating: a2)
        var i = 0
        while i + 8 <= n {
            store(load(y + i) + s1 * load(x1 + i) + s2 * load(x2 + i), y + i)
            i += 8
        }
        while i < n { y[i] += a1 * x1[i] + a2 * x2[i]; i += 1 }
    }

    /// y += a1·x1 + a2·x2 + a3·x3 + a4·x4 (four row streams in flight).
    @inline(__always)
    static func axpy4(_ a: SIMD4<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>,
                      _ x3: UnsafePointer<Float>, _ x4: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let s1 = SIMD8<Float>(repeating: a[0]), s2 = SIMD8<Float>(repeating: a[1])
        let s3 = SIMD8<Float>(repeating: a[2]), s4 = SIMD8<Float>(repeating: a[3])
        var i = 0
        while i + 8 <= n {
            let v = load(y + i) + (s1 * load(x1 + i) + s2 * load(x2 + i)) + (s3 * load(x3 + i) + s4 * load(x4 + i))
            store(v, y + i)
            i += 8
        }
        while i < n { y[i] += a[0] * x1[i] + a[1] * x2[i] + a[2] * x3[i] + a[3] * x4[i]; i += 1 }
    }

    /// (x·w1, x·w2): one pass over x for two dot products.
    @inline(__always)
    static func dot2(_ x: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ w2: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        var a1 = SIMD8<Float>(), a2 = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let v = load(x + i)
            a1 += v * load(w1 + i)
            a2 += v * load(w2 + i)
            i += 8
        }
        var s1 = a1.sum(), s2 = a2.sum()
        while i < n { s1 += x[i] * w1[i]; s2 += x[i] * w2[i]; i += 1 }
        return (s1, s2)
    }

    /// (x·w1, x·w2, x·w3, x·w4): four independent accumulator chains, each summed exactly as `dot2` sums its two
    /// (so a row's value does not depend on how many rows were taken together).
    @inline(__always)
    static func dot4(_ x: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ w2: UnsafePointer<Float>,
                     _ w3: UnsafePointer<Float>, _ w4: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        var a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>(), a4 = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let v = load(x + i)
            a1 += v * load(w1 + i)
            a2 += v * load(w2 + i)
            a3 += v * load(w3 + i)
            a4 += v * load(w4 + i)
            i += 8
        }
        var s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum(), s4 = a4.sum()
        while i < n { s1 += x[i] * w1[i]; s2 += x[i] * w2[i]; s3 += x[i] * w3[i]; s4 += x[i] * w4[i]; i += 1 }
        return SIMD4(s1, s2, s3, s4)
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Σ x² in double precision, for losses and statistics.
    static func sumSquaresDouble(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var s: Double = 0
        for i in 0..<n { s += Double(x[i]) * Double(x[i]) }
        return s
    }
}
