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
            xs = series.flatMap(\.x)
            ys = series.flatMap(\.y).map { transformY($0, figure.logY) }
        case .scatter(let points, _):
            xs = points.map(\.x)
            ys = points.map(\.y)
        }
        let xScale = Axis(values: xs, from: left, to: width - right)
        let yScale = Axis(values: ys, from: height - bottom, to: top)
        var body = ""
        var legend: [(String, String)] = []
        switch figure.kind {
        case .histogram(let edges, let series):
            let opacity = series.count > 1 ? "0.55" : "0.85"
            for (i, s) in series.enumerated() {
                for (b, count) in s.counts.enumerated() where count > 0 && b + 1 < edges.count {
                    let x0 = xScale.map(edges[b]), x1 = xScale.map(edges[b + 1])
                    let y = yScale.map(transformY(count, figure.logY)), y0 = yScale.map(yScale.lo)
                    body += "<rect x=\"\(n(x0))\" y=\"\(n(y))\" width=\"\(n(max(0.5, x1 - x0)))\" height=\"\(n(max(0, y0 - y)))\" fill=\"\(color(i))\" fill-opacity=\"\(opacity)\"/>"
                }
                legend.append((s.label, color(i)))
            }
        case .line(let series):
            for (i, s) in series.enumerated() {
                let points = zip(s.x, s.y).filter { $0.0.isFinite && transformY($0.1, figure.logY).isFinite }
                    .map { "\(n(xScale.map($0.0))),\(n(yScale.map(transformY($0.1, figure.logY))))" }
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
                body += "<circle cx=\"\(n(xScale.map(p.x)))\" cy=\"\(n(yScale.map(p.y)))\" r=\"4\" fill=\"\(color(0))\"><title>\(HTMLRenderer.escape(p.label))</title></circle>"
            }
            legend.append(("data", color(0)))
            if let fit {
                let y0 = fit.slope * xScale.lo + fit.intercept, y1 = fit.slope * xScale.hi + fit.intercept
                body += "<line x1=\"\(n(xScale.map(xScale.lo)))\" y1=\"\(n(yScale.map(y0)))\" x2=\"\(n(xScale.map(xScale.hi)))\" y2=\"\(n(yScale.map(y1)))\" stroke=\"\(color(1))\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"/>"
                legend.append(("fit: y = \(formatTableNumber(fit.slope))x + \(formatTableNumber(fit.intercept)), r = \(formatTableNumber(fit.r))", color(1)))
            }
        }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(n(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(HTMLRenderer.escape(figure.title))</text>"
        svg += "<clipPath id=\"plot\"><rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(width - left - right))\" height=\"\(n(height - top - bottom))\"/></clipPath>"
        svg += axes(xScale, yScale, figure)
        svg += "<g clip-path=\"url(#plot)\">" + body + "</g>"
        svg += legendBox(legend)
        return svg + "</svg>"
    }

    private static func transformY(_ y: Double, _ log: Bool) -> Double { log ? (y > 0 ? log10(y) : .nan) : y }

    private static func axes(_ x: Axis, _ y: Axis, _ figure: Figure) -> String {
        let x0 = left, x1 = width - right, y0 = height - bottom, y1 = top
        var s = "<g stroke=\"#333\" stroke-width=\"1\"><line x1=\"\(n(x0))\" y1=\"\(n(y0))\" x2=\"\(n(x1))\" y2=\"\(n(y0))\"/><line x1=\"\(n(x0))\" y1=\"\(n(y0))\" x2=\"\(n(x0))\" y2=\"\(n(y1))\"/></g>"
        for tick in x.ticks {
            let px = x.map(tick)
            s += "<line x1=\"\(n(px))\" y1=\"\(n(y0))\" x2=\"\(n(px))\" y2=\"\(n(y0 + 5))\" stroke=\"#333\"/>"
            s += "<text x=\"\(n(px))\" y=\"\(n(y0 + 17))\" text-anchor=\"middle\">\(formatTableNumber(tick))</text>"
        }
        for tick in y.ticks {
            let py = y.map(tick)
            s += "<line x1=\"\(n(x0 - 5))\" y1=\"\(n(py))\" x2=\"\(n(x0))\" y2=\"\(n(py))\" stroke=\"#333\"/>"
            s += "<line x1=\"\(n(x0))\" y1=\"\(n(py))\" x2=\"\(n(x1))\" y2=\"\(n(py))\" stroke=\"#eee\"/>"
            let label = figure.logY ? "1e" + formatTableNumber(tick) : formatTableNumber(tick)
            s += "<text x=\"\(n(x0 - 8))\" y=\"\(n(py + 4))\" text-anchor=\"end\">\(label)</text>"
        }
        s += "<text x=\"\(n((x0 + x1) / 2))\" y=\"\(n(height - 12))\" text-anchor=\"middle\">\(HTMLRenderer.escape(figure.xLabel))</text>"
        let yLabel = figure.logY ? figure.yLabel + " (log scale)" : figure.yLabel
        s += "<text x=\"16\" y=\"\(n((y0 + y1) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(n((y0 + y1) / 2)))\">\(HTMLRenderer.escape(yLabel))</text>"
        return s
    }

    private static func legendBox(_ entries: [(String, String)]) -> String {
        guard !entries.isEmpty else { return "" }
        let shown = entries.prefix(12)
        let boxWidth = Double(min(260, 30 + (shown.map { $0.0.count }.max() ?? 0) * 6))
        let x = width - right - boxWidth - 6
        var s = "<g><rect x=\"\(n(x))\" y=\"\(n(top + 4))\" width=\"\(n(boxWidth))\" height=\"\(n(Double(shown.count) * 15 + 8))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>"
        for (i, (label, colour)) in shown.enumerated() {
            let y = top + 16 + Double(i) * 15
            s += "<rect x=\"\(n(x + 6))\" y=\"\(n(y - 8))\" width=\"10\" height=\"10\" fill=\"\(colour)\"/>"
            s += "<text x=\"\(n(x + 22))\" y=\"\(n(y + 1))\">\(HTMLRenderer.escape(label.truncated(to: 40)))</text>"
        }
        return s + "</g>"
    }

    /// Coordinates with at most two decimals keep the SVG small.
    static func n(_ v: Double) -> String { v.isFinite ? fixedSignificant((v * 100).rounded() / 100, digits: 8) : "0" }
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

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / magnitude
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude
    }

    func map(_ v: Double) -> Double { from + (v - lo) / (hi - lo) * (to - from) }
}
