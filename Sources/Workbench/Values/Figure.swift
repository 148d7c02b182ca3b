// Figures: data plus labels; the renderers (text, SVG, JSON) decide how they look.

public struct Figure: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// One histogram per series over shared bin edges (edges.count == counts.count + 1 for each series).
        case histogram(edges: [Double], series: [HistogramSeries])
        /// Line plots, e.g. training curves.
        case line(series: [LineSeries])
        /// Points with an optional fitted line y = slope·x + intercept.
        case scatter(points: [ScatterPoint], fit: LineFit?)
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logY: Bool
    /// A log10 x axis (line figures, e.g. L0 on a frontier); values ≤ 0 are left out.
    public var logX: Bool
    public var kind: Kind

    public init(title: String, xLabel: String, yLabel: String, logY: Bool = false, logX: Bool = false, kind: Kind) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.logY = logY; self.logX = logX; self.kind = kind
    }

    /// A histogram figure of several samples with `bins` equal bins spanning all of them.
    public static func histogram(title: String, xLabel: String, samples: [(label: String, values: [Double])],
                                 bins: Int = 40) -> Figure {
        let finite = samples.flatMap { $0.values.filter(\.isFinite) }
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if hi <= lo { lo -= 0.5; hi += 0.5 }
        let width = (hi - lo) / Double(bins)
        let edges = (0...bins).map { lo + Double($0) * width }
        let series = samples.map { sample -> HistogramSeries in
            var counts = [Double](repeating: 0, count: bins)
            for v in sample.values where v.isFinite {
                counts[min(bins - 1, max(0, Int((v - lo) / width)))] += 1
            }
            return HistogramSeries(label: sample.label, counts: counts)
        }
        return Figure(title: title, xLabel: xLabel, yLabel: "count", kind: .histogram(edges: edges, series: series))
    }
}

public struct HistogramSeries: Sendable, Equatable {
    public var label: String
    public var counts: [Double]
    public init(label: String, counts: [Double]) { self.label = label; self.counts = counts }
}

public struct LineSeries: Sendable, Equatable {
    public var label: String
    public var x: [Double]
    public var y: [Double]
    /// One label per point (e.g. the grid value a frontier's SAE was trained at), drawn beside a marker; empty for
    /// a plain line.
    public var pointLabels: [String]
    public init(label: String, x: [Double], y: [Double], pointLabels: [String] = []) {
        self.label = label; self.x = x; self.y = y; self.pointLabels = pointLabels
    }
}

public struct ScatterPoint: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var label: String
    public init(x: Double, y: Double, label: String = "") { self.x = x; self.y = y; self.label = label }
}

public struct LineFit: Sendable, Equatable {
    public var slope: Double
    public var intercept: Double
    public var r: Double
    /// The two-sided p-value of r, when the caller computed it.
    public var p: Double?
    public init(slope: Double, intercept: Double, r: Double, p: Double? = nil) {
        self.slope = slope; self.intercept = intercept; self.r = r; self.p = p
    }

    /// Ordinary least squares of y on x; nil with fewer than two distinct x.
    public static func leastSquares(_ xs: [Double], _ ys: [Double]) -> LineFit? {
        let n = Double(xs.count)
        guard xs.count >= 2, xs.count == ys.count else { return nil }
        let mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
        var sxx = 0.0, sxy = 0.0, syy = 0.0
        for (x, y) in zip(xs, ys) { sxx += (x - mx) * (x - mx); sxy += (x - mx) * (y - my); syy += (y - my) * (y - my) }
        guard sxx > 0 else { return nil }
        let slope = sxy / sxx
        let r = syy > 0 ? sxy / (sxx * syy).squareRoot() : 0
        return LineFit(slope: slope, intercept: my - slope * mx, r: r)
    }
}
