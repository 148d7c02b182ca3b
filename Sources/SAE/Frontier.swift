// Sparsity–fidelity frontiers: each SAE of a sweep is a point (L0, metric); comparing two architectures fairly means
// comparing them at equal L0 ("a factor of 2 difference in L0 makes a pretty huge difference in reconstruction
// score"), which between grid points means interpolating. Interpolation is linear in log L0, the axis frontiers are
// drawn on (SAEBench), and never extrapolates: outside a curve's L0 range there is no value.
import Foundation

/// One SAE's place on a frontier: its L0, a metric, and the grid value it was trained at (as a label, e.g. "alpha=0.003").
public struct FrontierPoint: Sendable, Equatable {
    public var label: String
    public var l0: Double
    public var metric: Double
    public init(label: String, l0: Double, metric: Double) { self.label = label; self.l0 = l0; self.metric = metric }
}

/// A frontier: points ordered by L0, the metric between neighbours linear in log L0.
public struct FrontierCurve: Sendable, Equatable {
    /// The points by increasing L0 (equal L0s keep their given order).
    public let points: [FrontierPoint]
    /// Distinct L0s and their metric (the mean where several points share an L0): the interpolant's knots.
    private let knots: [(logL0: Double, metric: Double)]

    /// Refuses a point whose L0 is not positive (no place on a log axis: an SAE with no active feature) or whose L0
    /// or metric is not finite, naming it.
    public init(points: [FrontierPoint]) throws {
        guard !points.isEmpty else { throw SAEError("a frontier needs at least one point") }
        for p in points {
            guard p.l0.isFinite, p.l0 > 0 else {
                throw SAEError("\(p.label): L0 is \(p.l0), but a frontier interpolates in log L0, which needs L0 > 0")
            }
            guard p.metric.isFinite else { throw SAEError("\(p.label): the metric is \(p.metric), not a finite number") }
        }
        self.points = points.enumerated().sorted { ($0.element.l0, $0.offset) < ($1.element.l0, $1.offset) }.map(\.element)
        var knots: [(logL0: Double, metric: Double)] = []
        var i = 0
        while i < self.points.count {
            var j = i
            var sum = 0.0
            while j < self.points.count && self.points[j].l0 == self.points[i].l0 { sum += self.points[j].metric; j += 1 }
            knots.append((log(self.points[i].l0), sum / Double(j - i)))
            i = j
        }
        self.knots = knots
    }

    public static func == (a: FrontierCurve, b: FrontierCurve) -> Bool { a.points == b.points }

    public var minL0: Double { points.first!.l0 }
    public var maxL0: Double { points.last!.l0 }

    /// The metric at `l0`, linear in log L0 between the neighbouring points; nil outside [minL0, maxL0].
    public func metric(atL0 l0: Double) -> Double? {
        guard l0.isFinite, l0 >= minL0, l0 <= maxL0 else { return nil }
        let x = log(l0)
        // The first knot at or above x; the range check above guarantees one exists.
        let upper = knots.firstIndex { $0.logL0 >= x } ?? knots.count - 1
        if knots[upper].logL0 == x || upper == 0 { return knots[upper].metric }
        let (x0, y0) = knots[upper - 1], (x1, y1) = knots[upper]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }
}

/// Two frontiers compared at equal L0.
public struct FrontierMatch: Sendable, Equatable {
    /// One L0 at which both curves have a value: a grid point's L0 of either curve inside the overlap.
    public struct Row: Sendable, Equatable {
        public var l0: Double
        /// The grid point whose L0 this is, and which curve it belongs to (0 = a, 1 = b).
        public var curve: Int
        public var label: String
        public var metricA: Double
        public var metricB: Double
    }

    /// The two actual SAEs closest in L0 (smallest |log(L0_a / L0_b)|), whether or not the ranges overlap.
    public struct Pair: Sendable, Equatable {
        public var a: FrontierPoint
        public var b: FrontierPoint
        /// The larger L0 over the smaller: 1 is the same sparsity; 2 is the factor the study's reviewers warned about.
        public var l0Ratio: Double { max(a.l0, b.l0) / min(a.l0, b.l0) }
    }

    /// The common L0 range, nil when the curves' ranges do not overlap.
    public var overlap: ClosedRange<Double>?
    /// By increasing L0; a point of each curve at the same L0 gives one row (of curve a).
    public var rows: [Row]
    public var nearest: Pair

    public init(_ a: FrontierCurve, _ b: FrontierCurve) {
        let lo = max(a.minL0, b.minL0), hi = min(a.maxL0, b.maxL0)
        overlap = lo <= hi ? lo...hi : nil
        var rows: [Row] = []
        if overlap != nil {
            var seen = Set<Double>()
            let candidates = a.points.map { ($0, 0) } + b.points.map { ($0, 1) }
            for (point, curve) in candidates where point.l0 >= lo && point.l0 <= hi && seen.insert(point.l0).inserted {
                rows.append(Row(l0: point.l0, curve: curve, label: point.label,
                                metricA: a.metric(atL0: point.l0)!, metricB: b.metric(atL0: point.l0)!))
            }
            rows.sort { $0.l0 < $1.l0 }
        }
        self.rows = rows
        var best = Pair(a: a.points[0], b: b.points[0])
        for p in a.points {
            for q in b.points where abs(log(p.l0 / q.l0)) < abs(log(best.a.l0 / best.b.l0)) { best = Pair(a: p, b: q) }
        }
        nearest = best
    }
}
