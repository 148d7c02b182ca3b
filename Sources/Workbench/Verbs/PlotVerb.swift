// `plot TABLE …`: a figure value from a table's columns, so any result (a training log, eval metrics, a fit) can be
// drawn, shown and saved as .svg.

enum PlotVerb {
    static let plot = Verb(
        "plot", summary: "a figure from a table's columns: line (one series per `by` value), scatter with a fitted line, or histogram",
        example: "curve = plot log x=step y=loss by=layer log=true",
        positionals: [.required("TABLE", .value, "a table, e.g. the result of train or eval")],
        options: [
            .optional("x", .column, default: "the first column", "column for the x axis (not used by histograms)"),
            .required("y", .column, "column for the y axis, or the values of a histogram"),
            .optional("by", .column, "column whose values split the rows into series (e.g. layer)"),
            .optional("kind", .word(["line", "scatter", "histogram"]), default: "line", "the kind of plot"),
            .optional("title", .string, default: "y against x", "the figure's title"),
            .optional("log", .bool, default: "false", "logarithmic y axis (line plots, histograms)"),
            .optional("bins", .integer, default: "40", "histogram bins"),
        ]
    ) { call in
        guard case .table(let table) = call.arguments[0] else {
            throw call.error(atArgument: 0, "plot needs a table, found a \(call.arguments[0].typeName)")
        }
        func column(_ option: String, fallback: String?) throws -> (name: String, values: [Cell]) {
            guard let name = call.string(option) ?? fallback else {
                throw call.error("`plot` needs \(option)=\"COLUMN\"; the columns are \(table.columns.joined(separator: ", "))")
            }
            guard let cells = table.column(name) else {
                throw call.error(atOption: option, "the table has no column `\(name)`\(didYouMean(name, table.columns)); its columns are \(table.columns.joined(separator: ", "))")
            }
            return (name, cells)
        }
        func numbers(_ c: (name: String, values: [Cell]), _ option: String) throws -> [Double] {
            try c.values.map { cell in
                guard case .number(let v) = cell else { throw call.error(atOption: option, "column `\(c.name)` holds non-numbers (\(cell.plain.truncated(to: 20)))") }
                return v
            }
        }
        let y = try column("y", fallback: nil)
        let yValues = try numbers(y, "y")
        let kind = try call.requiredString("kind")
        let logY = call.flag("log")
        if kind == "histogram" {
            let bins = try call.requiredInteger("bins")
            guard bins >= 1, bins <= 1000 else { throw call.error(atOption: "bins", "bins must be in 1...1000") }
            var figure = Figure.histogram(title: call.string("title") ?? y.name, xLabel: y.name, samples: [(y.name, yValues)], bins: bins)
            figure.logY = logY
            return .figure(figure)
        }
        let x = try column("x", fallback: table.columns.first)
        let xValues = try numbers(x, "x")
        let title = call.string("title") ?? "\(y.name) against \(x.name)"
        if kind == "scatter" {
            let points = zip(xValues, yValues).map { ScatterPoint(x: $0, y: $1) }
            return .figure(Figure(title: title, xLabel: x.name, yLabel: y.name,
                                  kind: .scatter(points: points, fit: LineFit.leastSquares(xValues, yValues))))
        }
        var groups: [(label: String, indices: [Int])] = []
        if call.has("by") {
            let by = try column("by", fallback: nil)
            for (i, cell) in by.values.enumerated() {
                let label = "\(by.name) \(cell.plain)"
                if let g = groups.firstIndex(where: { $0.label == label }) { groups[g].indices.append(i) } else { groups.append((label, [i])) }
            }
        } else {
            groups = [(y.name, Array(yValues.indices))]
        }
        let series = groups.map { g in LineSeries(label: g.label, x: g.indices.map { xValues[$0] }, y: g.indices.map { yValues[$0] }) }
        return .figure(Figure(title: title, xLabel: x.name, yLabel: y.name, logY: logY, kind: .line(series: series)))
    }
}
