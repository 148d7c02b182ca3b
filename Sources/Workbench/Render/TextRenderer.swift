import Foundation

// Terminal forms: aligned tables, and figures as Unicode block histograms and sparklines.

enum TextRenderer {
    /// The longest a cell may be: 80 characters, or the terminal's width when it is wider (`help` summaries and
    /// contexts are then shown whole).
    static var cellLimit: Int { max(80, terminalColumns() ?? 0) }

    /// The width of the terminal on stdout (or stderr), else $COLUMNS.
    static func terminalColumns() -> Int? {
        var size = winsize()
        for descriptor: Int32 in [1, 2] where isatty(descriptor) != 0 {
            if ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap { Int($0) }
    }

    static func table(_ table: Table, maxRows: Int = 200, cellLimit: Int = TextRenderer.cellLimit) -> String {
        var lines: [String] = []
        if let title = table.title { lines.append(title) }
        let shownRows = table.rows.prefix(maxRows)
        let cells = shownRows.map { row in table.columns.indices.map { $0 < row.count ? row[$0].plain.truncated(to: cellLimit) : "" } }
        var widths = table.columns.map(displayWidth)
        for row in cells { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], displayWidth(cell)) } }
        // Numbers align right, text left, as in most terminal table printers.
        let numeric = table.columns.indices.map { i in
            shownRows.allSatisfy { row in
                guard i < row.count else { return true }
                if case .text = row[i] { return false }
                if case .tokens = row[i] { return false }
                return true
            }
        }
        func line(_ items: [String]) -> String {
            items.enumerated().map { i, item in
                let pad = String(repeating: " ", count: widths[i] - displayWidth(item))
                return numeric[i] ? pad + item : item + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        lines.append(line(table.columns))
        lines.append(widths.map { String(repeating: "─", count: $0) }.joined(separator: "  "))
        for row in cells { lines.append(line(row)) }
        if table.rows.count > maxRows { lines.append("… \(table.rows.count - maxRows) more rows") }
        if table.rows.isEmpty { lines.append("(no rows)") }
        return lines.joined(separator: "\n")
    }

    static let blocks: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// A sparkline of `values` scaled between their min and max.
    static func sparkline(_ values: [Double], width: Int = 60) -> String {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return "" }
        let sampled = resample(values, to: width)
        return String(sampled.map { v -> Character in
            guard v.isFinite else { return " " }
            let level = hi > lo ? Int(((v - lo) / (hi - lo) * 7).rounded()) + 1 : 4
            return blocks[min(8, max(1, level))]
        })
    }

    /// Averages consecutive values down to at most `width` points.
    static func resample(_ values: [Double], to width: Int) -> [Double] {
        guard values.count > width, width > 0 else { return values }
        return (0..<width).map { i in
            let lo = i * values.count / width, hi = max(lo + 1, (i + 1) * values.count / width)
            let slice = values[lo..<hi].filter(\.isFinite)
            return slice.isEmpty ? .nan : slice.reduce(0, +) / Double(slice.count)
        }
    }

    static func figure(_ figure: Figure) -> String {
        var lines = [figure.title]
        switch figure.kind {
        case .histogram(let edges, let series):
            let labelWidth = series.map { $0.label.count }.max() ?? 0
            for s in series {
                let counts = figure.logY ? s.counts.map { $0 > 0 ? log10($0) + 1 : 0 } : s.counts
                let top = counts.max() ?? 0
                let bars = String(counts.map { c -> Character in
                    top > 0 ? blocks[c > 0 ? max(1, Int((c / top * 8).rounded())) : 0] : " "
                })
                lines.append(s.label.padding(labelWidth) + " │" + bars + "│ n=" + formatNumber(s.counts.reduce(0, +)))
            }
            if let first = edges.first, let last = edges.last {
                lines.append(String(repeating: " ", count: labelWidth + 2) + "\(figure.xLabel): \(formatTableNumber(first)) … \(formatTableNumber(last))")
            }
        case .line(let series):
            let labelWidth = series.map { $0.label.count }.max() ?? 0
            for s in series {
                if !s.pointLabels.isEmpty {
                    // Labelled points (a frontier's grid values) read better as a list than as a sparkline.
                    let points = s.pointLabels.indices.filter { $0 < s.x.count && $0 < s.y.count }.map {
                        "\(s.pointLabels[$0]) (\(formatTableNumber(s.x[$0])), \(formatTableNumber(s.y[$0])))"
                    }
                    lines.append(s.label.padding(labelWidth) + " " + points.joined(separator: " · "))
                    continue
                }
                let lo = s.y.filter(\.isFinite).min(), hi = s.y.filter(\.isFinite).max()
                let range = lo.map { "\(formatTableNumber($0)) … \(formatTableNumber(hi!))" } ?? "no data"
                lines.append(s.label.padding(labelWidth) + " " + sparkline(s.y) + "  " + figure.yLabel + " " + range)
            }
            if series.contains(where: { !$0.pointLabels.isEmpty }) {
                lines.append(String(repeating: " ", count: labelWidth + 1) + "points: label (\(figure.xLabel), \(figure.yLabel))")
            } else if let xs = series.first?.x, let first = xs.first, let last = xs.last {
                lines.append(String(repeating: " ", count: labelWidth + 1) + "\(figure.xLabel): \(formatTableNumber(first)) … \(formatTableNumber(last))")
            }
        case .scatter(let points, let fit):
            lines.append(contentsOf: scatterGrid(points, xLabel: figure.xLabel, yLabel: figure.yLabel))
            if let fit {
                lines.append("fit: \(figure.yLabel) = \(formatTableNumber(fit.slope)) · \(figure.xLabel) + \(formatTableNumber(fit.intercept))  (r = \(formatTableNumber(fit.r)))")
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func scatterGrid(_ points: [ScatterPoint], xLabel: String, yLabel: String, width: Int = 50, height: Int = 12) -> [String] {
        let finite = points.filter { $0.x.isFinite && $0.y.isFinite }
        guard let x0 = finite.map(\.x).min(), let x1 = finite.map(\.x).max(),
              let y0 = finite.map(\.y).min(), let y1 = finite.map(\.y).max() else { return ["(no points)"] }
        var grid = [[Character]](repeating: [Character](repeating: " ", count: width), count: height)
        for p in finite {
            let col = x1 > x0 ? Int(((p.x - x0) / (x1 - x0) * Double(width - 1)).rounded()) : width / 2
            let row = y1 > y0 ? Int(((p.y - y0) / (y1 - y0) * Double(height - 1)).rounded()) : height / 2
            grid[height - 1 - row][col] = "●"
        }
        let yTop = formatTableNumber(y1), yBottom = formatTableNumber(y0)
        let pad = max(yTop.count, yBottom.count)
        var lines = [yLabel]
        for (i, row) in grid.enumerated() {
            let label = i == 0 ? yTop : i == height - 1 ? yBottom : ""
            lines.append(label.leftPadding(pad) + " │" + String(row))
        }
        lines.append(String(repeating: " ", count: pad) + " └" + String(repeating: "─", count: width))
        lines.append(String(repeating: " ", count: pad + 2) + formatTableNumber(x0) + " … " + formatTableNumber(x1) + "  " + xLabel)
        return lines
    }
}

/// Terminal columns a string takes; block and box characters count one.
func displayWidth(_ s: String) -> Int { s.count }

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    public func leftPadding(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
