// Histograms, quantiles, least-squares fits and the t-distribution p-value used by the dictionary analysis.
import Foundation

public struct Histogram: Codable, Sendable, Equatable {
    /// bins + 1 edges; bin k counts values in [edges[k], edges[k+1]) (the last bin includes its right edge).
    public var edges: [Double]
    public var counts: [Int]
    /// Values outside [edges.first, edges.last].
    public var below: Int
    public var above: Int

    public init(values: some Sequence<Double>, bins: Int, range: ClosedRange<Double>) {
        precondition(bins > 0 && range.upperBound > range.lowerBound, "histogram needs bins > 0 and a non-empty range")
        let lo = range.lowerBound, hi = range.upperBound, width = (hi - lo) / Double(bins)
        edges = (0...bins).map { lo + Double($0) * width }
        counts = [Int](repeating: 0, count: bins)
        below = 0; above = 0
        for v in values {
            if v < lo { below += 1; continue }
            if v > hi { above += 1; continue }
            counts[min(bins - 1, Int((v - lo) / width))] += 1
        }
    }

    /// A histogram over the values' own range (a unit range around a constant).
    public init(values: [Double], bins: Int) {
        let lo = values.min() ?? 0, hi = values.max() ?? 1
        self.init(values: values, bins: bins, range: lo < hi ? lo...hi : (lo - 0.5)...(lo + 0.5))
    }

    public var total: Int { counts.reduce(0, +) + below + above }
}

public enum Statistics {
    /// The q-quantile (0...1) of the values, linear interpolation between order statistics (numpy's default).
    public static func quantile(sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let pos = q * Double(sorted.count - 1)
        let i = Int(pos.rounded(.down)), f = pos - Double(i)
        return i + 1 < sorted.count ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i]
    }

    /// Pearson correlation of two equally long series.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) { sxy += (a - mx) * (b - my); sxx += (a - mx) * (a - mx); syy += (b - my) * (b - my) }
        return sxy / (sxx * syy).squareRoot()
    }

    /// Two-sided p-value of Student's t with `dof` degrees of freedom: P(|T| ≥ |t|) = I_{ν/(ν+t²)}(ν/2, 1/2).
    public static func twoSidedTPValue(t: Double, dof: Double) -> Double {
        guard dof > 0, !t.isNaN else { return .nan }
        if t.isInfinite { return 0 }
        return regularizedIncompleteBeta(a: dof / 2, b: 0.5, x: dof / (dof + t * t))
    }

    /// I_x(a, b), the regularized incomplete beta function, by the continued fraction (modified Lentz), using the
    /// symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges faster.
    public static func regularizedIncompleteBeta(a: Double, b: Double, x: Double) -> Double {
        precondition(a > 0 && b > 0, "incomplete beta needs a, b > 0")
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logFront = Foundation.lgamma(a + b) - Foundation.lgamma(a) - Foundation.lgamma(b)
            + a * Foundation.log(x) + b * Foundation.log1p(-x)
        let front = Foundation.exp(logFront)
        if x < (a + 1) / (a + b + 2) { return front * betaContinuedFraction(a: a, b: b, x: x) / a }
        return 1 - front * betaContinuedFraction(a: b, b: a, x: 1 - x) / b
    }

    private static func betaContinuedFraction(a: Double, b: Double, x: Double) -> Double {
        let tiny = 1e-300, eps = 1e-15
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...10_000 {
            let mm = Double(m)
            let even = mm * (b - mm) * x / ((a + 2 * mm - 1) * (a + 2 * mm))
            d = 1 + even * d; if abs(d) < tiny { d = tiny }
            c = 1 + even / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            let odd = -(a + mm) * (a + b + mm) * x / ((a + 2 * mm) * (a + 2 * mm + 1))
            d = 1 + odd * d; if abs(d) < tiny { d = tiny }
            c = 1 + odd / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < eps { break }
        }
        return h
    }
}

/// y ≈ slope·x + intercept by least squares, with Pearson r and the two-sided p-value of the slope (t test,
/// n − 2 degrees of freedom), as scipy.stats.linregress reports them.
public struct LinearFit: Codable, Sendable, Equatable {
    public var slope: Double
    public var intercept: Double
    public var r: Double
    public var p: Double
    public var n: Int

    public init(x: [Double], y: [Double]) throws {
        guard x.count == y.count else { throw SAEError("fit: \(x.count) x values but \(y.count) y values") }
        guard x.count >= 3 else { throw SAEError("fit: needs at least 3 points (layers), got \(x.count)") }
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) { sxy += (a - mx) * (b - my); sxx += (a - mx) * (a - mx); syy += (b - my) * (b - my) }
        guard sxx > 0 else { throw SAEError("fit: all x values are equal, the slope is undefined") }
        slope = sxy / sxx
        intercept = my - slope * mx
        self.n = x.count
        if syy == 0 { r = 0; p = 1; return }
        r = max(-1, min(1, sxy / (sxx * syy).squareRoot()))
        let dof = n - 2
        if abs(r) >= 1 { p = 0; return }
        let t = r * (dof / ((1 - r) * (1 + r))).squareRoot()
        p = Statistics.twoSidedTPValue(t: t, dof: dof)
    }
}
