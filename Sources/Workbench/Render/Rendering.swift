import Foundation

// One entry point per output form: text (REPL, scripts), a mime bundle (Jupyter), JSON (`--json`).

public enum Rendering {
    /// The terminal form of a value; "" for none.
    public static func text(_ value: Value) -> String {
        switch value {
        case .none: return ""
        case .number(let v): return formatNumber(v)
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .list(let items): return "[" + items.map(literal).joined(separator: ", ") + "]"
        case .range(let lo, let hi): return "\(lo)..\(hi)"
        case .table(let table): return TextRenderer.table(table)
        case .figure(let figure): return TextRenderer.figure(figure)
        case .object(let object):
            return "\(object.typeName): \(object.summary)\n" + TextRenderer.table(object.descriptionTable)
        }
    }

    /// A value as it would be written in source (list items, `vars`).
    static func literal(_ value: Value) -> String {
        if case .string(let s) = value { return quoteString(s) }
        return text(value)
    }

    /// The mime bundle front ends display: text/plain always; tables add text/html; figures add image/svg+xml and
    /// an <img> fallback in text/html (commands.md "Output"); application/json holds the JSON form.
    public static func bundle(_ value: Value) -> MimeBundle {
        var data = ["text/plain": text(value), "application/json": json(value).serialized]
        switch value {
        case .table(let table):
            data["text/html"] = HTMLRenderer.table(table)
        case .figure(let figure):
            let svg = SVGRenderer.figure(figure)
            data["image/svg+xml"] = svg
            data["text/html"] = HTMLRenderer.svgImage(svg, alt: figure.title)
        case .object(let object):
            data["text/html"] = "<div style=\"font-family:monospace;margin-bottom:4px\"><b>\(HTMLRenderer.escape(object.typeName))</b>: \(HTMLRenderer.escape(object.summary))</div>"
                + HTMLRenderer.table(object.descriptionTable)
        default:
            break
        }
        return MimeBundle(data)
    }

    /// The JSON form of a value: the "value" member of a `--json` line.
    public static func json(_ value: Value) -> JSON {
        switch value {
        case .none: return .null
        case .number(let v): return .number(v)
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .list(let items): return .array(items.map(json))
        case .range(let lo, let hi): return .array((lo...hi).map { .number(Double($0)) })
        case .table(let table): return tableJSON(table)
        case .figure(let figure): return figureJSON(figure)
        case .object(let object): return object.json
        }
    }

    static func tableJSON(_ table: Table) -> JSON {
        var members: [(String, JSON)] = []
        if let title = table.title { members.append(("title", .string(title))) }
        members.append(("columns", .array(table.columns.map { .string($0) })))
        members.append(("rows", .array(table.rows.map { .array($0.map(cellJSON)) })))
        return .object(members)
    }

    static func cellJSON(_ cell: Cell) -> JSON {
        switch cell {
        case .number(let v): return .number(v)
        case .text(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .null: return .null
        case .tokens(let tokens, _):
            return .object([
                ("tokens", .array(tokens.map { .string($0.text) })),
                ("activations", .array(tokens.map { .number($0.activation) })),
                ("focus", tokens.firstIndex(where: \.isFocus).map { .number(Double($0)) } ?? .null),
            ])
        }
    }

    static func figureJSON(_ figure: Figure) -> JSON {
        func numbers(_ xs: [Double]) -> JSON { .array(xs.map { .number($0) }) }
        var members: [(String, JSON)] = [("title", .string(figure.title)), ("x_label", .string(figure.xLabel)),
                                         ("y_label", .string(figure.yLabel))]
        switch figure.kind {
        case .histogram(let edges, let series):
            members.append(("kind", .string("histogram")))
            members.append(("edges", numbers(edges)))
            members.append(("series", .array(series.map { .object([("label", .string($0.label)), ("counts", numbers($0.counts))]) })))
        case .line(let series):
            members.append(("kind", .string("line")))
            if figure.logX { members.append(("log_x", .bool(true))) }
            members.append(("series", .array(series.map {
                var fields: [(String, JSON)] = [("label", .string($0.label)), ("x", numbers($0.x)), ("y", numbers($0.y))]
                if !$0.pointLabels.isEmpty { fields.append(("point_labels", .array($0.pointLabels.map(JSON.string)))) }
                return .object(fields)
            })))
        case .scatter(let points, let fit):
            members.append(("kind", .string("scatter")))
            members.append(("points", .array(points.map {
                .object([("x", .number($0.x)), ("y", .number($0.y)), ("label", .string($0.label))])
            })))
            members.append(("fit", fit.map { .object([("slope", .number($0.slope)), ("intercept", .number($0.intercept)), ("r", .number($0.r))]) } ?? .null))
        }
        return .object(members)
    }
}
