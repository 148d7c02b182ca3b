import Foundation

// SVG plots: axes with "nice" ticks, axis labels, a title and a legend; histograms, line plots, scatter with a fit.

enum SVGRenderer {
    static let width = 640.0, height = 400.0
    static let left = 70.0, right = 20.0, top = 40.0, bottom = 55.0
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"]

    static func color(_ i: Int) -> String { palette[i % palette.count] }

    static func figure(_ figure: Figure) -> String {
        var xs: [Double] = [], ys: [Double] = [0]
        switch figure.kind {
        case .histogram(let edges, let series):
            xs = edges
            ys += series.flatMap(\.counts).map { transformY($0, figure.logY) }
        case .line(let series):
            xs = series.flatMap(\.x).map { transformY($0, figure.logX) }
            ys = series.flatMap(\.y).map { transformY($0, figure.logY) }
        case .scatter(let points, _):
            xs = points.map(\.x)
            ys = points.map(\.y)
        }
        let logX = figure.logX && { if case .line = figure.kind { return true } else { return false } }()
        let xScale = logX ? Axis(logValues: xs, from: left, to: width - right) : Axis(values: xs, from: left, to: width - right)
        let yScale = figure.logY ? Axis(logValues: ys, from: height - bottom, to: top) : Axis(values: ys, from: height - bottom, to: top)
        var body = ""
        // Point labels sit outside the clip path, so one beside a point at the plot's edge is not cut off.
        var labels = ""
        var legend: [(String, String)] = []
        // What the legend must not cover, in pixels: points, bars and (sampled) line segments.
        var occupied: [Box] = []
        func occupySegment(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double) {
            let steps = max(1, Int((abs(x1 - x0) + abs(y1 - y0)) / 4))
            for k in 0...steps {
                let t = Double(k) / Double(steps)
                occupied.append(Box(x: x0 + (x1 - x0) * t - 2, y: y0 + (y1 - y0) * t - 2, width: 4, height: 4))
            }
        }
        switch figure.kind {
        case .histogram(let edges, let series):
            let opacity = series.count > 1 ? "0.55" : "0.85"
            for (i, s) in series.enumerated() {
                for (b, count) in s.counts.enumerated() where count > 0 && b + 1 < edges.count {
                    let x0 = xScale.map(edges[b]), x1 = xScale.map(edges[b + 1])
                    let y = yScale.map(transformY(count, figure.logY)), y0 = yScale.map(yScale.lo)
                    body += "<rect x=\"\(n(x0))\" y=\"\(n(y))\" width=\"\(n(max(0.5, x1 - x0)))\" height=\"\(n(max(0, y0 - y)))\" fill=\"\(color(i))\" fill-opacity=\"\(opacity)\"/>"
                    occupied.append(Box(x: x0, y: y, width: max(0.5, x1 - x0), height: max(0, y0 - y)))
                }
                legend.append((s.label, color(i)))
            }
        case .line(let series):
            for (i, s) in series.enumerated() {
                let kept = s.x.indices.filter { k in
                    k < s.y.count && transformY(s.x[k], logX).isFinite && transformY(s.y[k], figure.logY).isFinite
                }
                let pixels = kept.map { (xScale.map(transformY(s.x[$0], logX)), yScale.map(transformY(s.y[$0], figure.logY))) }
                for (a, b) in zip(pixels, pixels.dropFirst()) { occupySegment(a.0, a.1, b.0, b.1) }
                if let only = pixels.first { occupySegment(only.0, only.1, only.0, only.1) }
                let points = pixels.map { "\(n($0.0)),\(n($0.1))" }
                if !s.pointLabels.isEmpty {
                    for (k, (px, py)) in zip(kept, pixels) where k < s.pointLabels.count {
                        body += "<circle cx=\"\(n(px))\" cy=\"\(n(py))\" r=\"3\" fill=\"\(color(i))\"/>"
                        let text = s.pointLabels[k]
                        let textWidth = Double(text.count) * 5.5
                        // Right of the point, or left of it near the plot's right edge; above it, or below near the top.
                        let toLeft = px + 5 + textWidth > width - right
                        let tx = toLeft ? px - 5 : px + 5, ty = py - 6 < top + 8 ? py + 14 : py - 6
                        labels += "<text x=\"\(n(tx))\" y=\"\(n(ty))\" font-size=\"10\" fill=\"\(color(i))\"\(toLeft ? " text-anchor=\"end\"" : "")>\(HTMLRenderer.escape(text))</text>"
                        occupied.append(Box(x: toLeft ? tx - textWidth : tx, y: ty - 9, width: textWidth, height: 11))
                    }
                }
                if points.count == 1 {
                    let xy = points[0].split(separator: ",")
                    body += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(color(i))\"/>"
                } else if !points.isEmpty {
                    body += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(color(i))\" stroke-width=\"1.5\"/>"
                }
                legend.append((s.label, color(i)))
            }
        case .scatter(let points, let fit):
            for p in points where p.x.isFinite && p.y.isFinite {
                occupied.append(Box(x: xScale.map(p.x) - 5, y: yScale.map(p.y) - 5, width: 10, height: 10))
                body += "<circle cx=\"\(n(xScale.map(p.x)))\" cy=\"\(n(yScale.map(p.y)))\" r=\"4\" fill=\"\(color(0))\"><title>\(HTMLRenderer.escape(p.label))</title></circle>"
            }
            legend.append(("data", color(0)))
            if let fit {
                let y0 = fit.slope * xScale.lo + fit.intercept, y1 = fit.slope * xScale.hi + fit.intercept
                body += "<line x1=\"\(n(xScale.map(xScale.lo)))\" y1=\"\(n(yScale.map(y0)))\" x2=\"\(n(xScale.map(xScale.hi)))\" y2=\"\(n(yScale.map(y1)))\" stroke=\"\(color(1))\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"/>"
                occupySegment(xScale.map(xScale.lo), yScale.map(y0), xScale.map(xScale.hi), yScale.map(y1))
                legend.append((fitLabel(fit), color(1)))
            }
        }
        let placement = placeLegend(legend, avoiding: occupied)
        let canvasWidth = width + placement.extraWidth
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(canvasWidth))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(canvasWidth)) \(n(height))\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(n(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(HTMLRenderer.escape(figure.title))</text>"
        svg += "<clipPath id=\"plot\"><rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(width - left - right))\" height=\"\(n(height - top - bottom))\"/></clipPath>"
        svg += axes(xScale, yScale, figure)
        svg += "<g clip-path=\"url(#plot)\">" + body + "</g>" + labels
        svg += legendBox(legend, at: placement.box)
        return svg + "</svg>"
    }

    private static func transformY(_ y: Double, _ log: Bool) -> Double { log ? (y > 0 ? log10(y) : .nan) : y }

    private static func axes(_ x: Axis, _ y: Axis, _ figure: Figure) -> String {
        let x0 = left, x1 = width - right, y0 = height - bottom, y1 = top
        var s = "<g stroke=\"#333\" stroke-width=\"1\"><line x1=\"\(n(x0))\" y1=\"\(n(y0))\" x2=\"\(n(x1))\" y2=\"\(n(y0))\"/><line x1=\"\(n(x0))\" y1=\"\(n(y0))\" x2=\"\(n(x0))\" y2=\"\(n(y1))\"/></g>"
        let logX = figure.logX && { if case .line = figure.kind { return true } else { return false } }()
        for tick in x.ticks {
            let px = x.map(tick)
            s += "<line x1=\"\(n(px))\" y1=\"\(n(y0))\" x2=\"\(n(px))\" y2=\"\(n(y0 + 5))\" stroke=\"#333\"/>"
            s += "<text x=\"\(n(px))\" y=\"\(n(y0 + 17))\" text-anchor=\"middle\">\(logX ? logTickLabel(tick) : formatTableNumber(tick))</text>"
        }
        for tick in y.ticks {
            let py = y.map(tick)
            s += "<line x1=\"\(n(x0 - 5))\" y1=\"\(n(py))\" x2=\"\(n(x0))\" y2=\"\(n(py))\" stroke=\"#333\"/>"
            s += "<line x1=\"\(n(x0))\" y1=\"\(n(py))\" x2=\"\(n(x1))\" y2=\"\(n(py))\" stroke=\"#eee\"/>"
            let label = figure.logY ? logTickLabel(tick) : formatTableNumber(tick)
            s += "<text x=\"\(n(x0 - 8))\" y=\"\(n(py + 4))\" text-anchor=\"end\">\(label)</text>"
        }
        let xLabel = logX ? figure.xLabel + " (log scale)" : figure.xLabel
        s += "<text x=\"\(n((x0 + x1) / 2))\" y=\"\(n(height - 12))\" text-anchor=\"middle\">\(HTMLRenderer.escape(xLabel))</text>"
        let yLabel = figure.logY ? figure.yLabel + " (log scale)" : figure.yLabel
        s += "<text x=\"16\" y=\"\(n((y0 + y1) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(n((y0 + y1) / 2)))\">\(HTMLRenderer.escape(yLabel))</text>"
        return s
    }

    /// A tick of a log10 axis as the value it stands for: 1, 3, 10, 0.03, 1e+06.
    static func logTickLabel(_ exponent: Double) -> String {
        let value = pow(10, exponent)
        if value >= 1e5 || value < 1e-3 {
            let power = Int(exponent.rounded(.down))
            let mantissa = (value / pow(10, Double(power)) * 10).rounded() / 10
            return (mantissa == 1 ? "" : formatTableNumber(mantissa) + "×") + "1e\(power)"
        }
        return formatTableNumber(Double(String(format: "%.3g", value)) ?? value)
    }

    /// The fit in full: slope, intercept with its sign, r and (when known) p.
    static func fitLabel(_ fit: LineFit) -> String {
        func short(_ v: Double) -> String { Double(String(format: "%.3g", v)).map(formatTableNumber) ?? formatTableNumber(v) }
        let sign = fit.intercept < 0 ? "−" : "+"
        var label = "fit: y = \(short(fit.slope))x \(sign) \(short(abs(fit.intercept))), r = \(short(fit.r))"
        if let p = fit.p { label += ", p = \(short(p))" }
        return label
    }

    static let legendLineHeight = 15.0
    /// Wider than the average glyph of 11px sans-serif, so the box always holds its text.
    static let legendCharacterWidth = 6.6

    static func legendSize(_ entries: [(String, String)]) -> (width: Double, height: Double) {
        let longest = entries.map { Double($0.0.count) }.max() ?? 0
        return (30 + longest * legendCharacterWidth, Double(entries.count) * legendLineHeight + 8)
    }

    /// The legend goes in the first corner of the plot (top right, top left, bottom right, bottom left) where it
    /// covers no data; when every corner holds some, it goes outside, right of the plot, and the canvas widens.
    static func placeLegend(_ entries: [(String, String)], avoiding occupied: [Box]) -> (box: Box, extraWidth: Double) {
        guard !entries.isEmpty else { return (Box(x: 0, y: 0, width: 0, height: 0), 0) }
        let (w, h) = legendSize(entries)
        let margin = 6.0
        let plotLeft = left, plotRight = width - right, plotTop = top, plotBottom = height - bottom
        let corners = [
            Box(x: plotRight - w - margin, y: plotTop + margin, width: w, height: h),
            Box(x: plotLeft + margin, y: plotTop + margin, width: w, height: h),
            Box(x: plotRight - w - margin, y: plotBottom - h - margin, width: w, height: h),
            Box(x: plotLeft + margin, y: plotBottom - h - margin, width: w, height: h),
        ]
        let fits = w + 2 * margin <= plotRight - plotLeft && h + 2 * margin <= plotBottom - plotTop
        if fits, let free = corners.first(where: { corner in !occupied.contains { $0.intersects(corner) } }) {
            return (free, 0)
        }
        return (Box(x: width - right + 10, y: plotTop, width: w, height: h), w + 20)
    }

    private static func legendBox(_ entries: [(String, String)], at box: Box) -> String {
        guard !entries.isEmpty else { return "" }
        var s = "<g class=\"legend\"><rect x=\"\(n(box.x))\" y=\"\(n(box.y))\" width=\"\(n(box.width))\" height=\"\(n(box.height))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>"
        for (i, (label, colour)) in entries.enumerated() {
            let y = box.y + 12 + Double(i) * legendLineHeight
            s += "<rect x=\"\(n(box.x + 6))\" y=\"\(n(y - 8))\" width=\"10\" height=\"10\" fill=\"\(colour)\"/>"
            s += "<text x=\"\(n(box.x + 22))\" y=\"\(n(y + 1))\">\(HTMLRenderer.escape(label))</text>"
        }
        return s + "</g>"
    }

    /// Coordinates with at most two decimals keep the SVG small.
    static func n(_ v: Double) -> String { v.isFinite ? fixedSignificant((v * 100).rounded() / 100, digits: 8) : "0" }
}

/// A rectangle in SVG pixels.
struct Box: Equatable {
    var x, y, width, height: Double
    func intersects(_ other: Box) -> Bool {
        x < other.x + other.width && other.x < x + width && y < other.y + other.height && other.y < y + height
    }
}

/// A linear axis over the data's range, widened to "nice" tick values (1, 2, 5 × 10^k).
struct Axis {
    var lo: Double
    var hi: Double
    var ticks: [Double]
    let from: Double, to: Double

    init(values: [Double], from: Double, to: Double) {
        self.from = from
        self.to = to
        let finite = values.filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if hi <= lo { lo -= 1; hi += 1 }
        let step = Axis.niceStep((hi - lo) / 5)
        lo = (lo / step).rounded(.down) * step
        hi = (hi / step).rounded(.up) * step
        self.lo = lo
        self.hi = hi
        ticks = stride(from: lo, through: hi + step / 2, by: step).map { ($0 / step).rounded() * step }
    }

    /// An axis over log10 values whose ticks sit at round values: 1, 2, 5 per decade over at most one decade,
    /// 1 and 3 over up to four, whole decades beyond that (every k-th decade past twelve).
    init(logValues values: [Double], from: Double, to: Double) {
        self.from = from
        self.to = to
        let finite = values.filter(\.isFinite)
        var lo = (finite.min() ?? 0).rounded(.down), hi = (finite.max() ?? 1).rounded(.up)
        if hi <= lo { hi = lo + 1 }
        let decades = hi - lo
        let multiples: [Double] = decades <= 1 ? [1, 2, 5] : decades <= 4 ? [1, 3] : [1]
        let every = max(1, Int((decades / 12).rounded(.up)))
        var ticks: [Double] = []
        for (k, decade) in stride(from: lo, through: hi, by: 1).enumerated() where k % every == 0 {
            for m in multiples where decade + log10(m) <= hi + 1e-9 { ticks.append(decade + log10(m)) }
        }
        // Trim whole empty decades at the ends only when the data leave room for round ticks inside.
        if let first = finite.min(), let last = finite.max() {
            let inner = ticks.filter { $0 >= first - 1e-9 && $0 <= last + 1e-9 }
            if inner.count >= 3 {
                lo = ticks.last(where: { $0 <= first + 1e-9 }) ?? lo
                hi = ticks.first(where: { $0 >= last - 1e-9 }) ?? hi
                ticks = ticks.filter { $0 >= lo - 1e-9 && $0 <= hi + 1e-9 }
            }
        }
        self.lo = lo
        self.hi = hi
        self.ticks = ticks
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / magnitude
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude
    }

    func map(_ v: Double) -> Double { from + (v - lo) / (hi - lo) * (to - from) }
}
