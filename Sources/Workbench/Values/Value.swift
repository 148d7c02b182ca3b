// The values a statement produces and a session binds to names.

/// A value of the language. Engine objects (models, corpora, stores, SAE groups, runs) live behind `SessionObject`.
public enum Value {
    case none
    case number(Double)
    case string(String)
    case bool(Bool)
    case list([Value])
    case range(Int, Int)
    case table(Table)
    case figure(Figure)
    case object(any SessionObject)

    /// The type name of commands.md: model, corpus, store, sae, table, figure, number, string, run, none
    /// (plus bool, list and range for bare literals).
    public var typeName: String {
        switch self {
        case .none: return "none"
        case .number: return "number"
        case .string: return "string"
        case .bool: return "bool"
        case .list: return "list"
        case .range: return "range"
        case .table: return "table"
        case .figure: return "figure"
        case .object(let object): return object.typeName
        }
    }

    /// One line for `vars`.
    public var summary: String {
        switch self {
        case .none: return "none"
        case .number(let v): return formatNumber(v)
        case .string(let s): return quoteString(s).truncated(to: 60)
        case .bool(let b): return b ? "true" : "false"
        case .list(let items): return "list of \(items.count)"
        case .range(let lo, let hi): return "\(lo)..\(hi)"
        case .table(let t): return "\(t.rows.count) rows × \(t.columns.count) columns" + (t.title.map { ": \($0)" } ?? "")
        case .figure(let f): return "figure: \(f.title)"
        case .object(let object): return object.summary
        }
    }
}

/// An engine object held by the session. Each wrapper says how it shows itself.
public protocol SessionObject: AnyObject {
    /// model, corpus, store, sae or run.
    var typeName: String { get }
    /// One line for `vars`.
    var summary: String { get }
    /// A table that describes the object (shown in the REPL and Jupyter).
    var descriptionTable: Table { get }
    /// The JSON form for `--json`.
    var json: JSON { get }
}

/// The source form of a string: quoted, with the language's escapes.
func quoteString(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}

extension String {
    func truncated(to limit: Int) -> String {
        count <= limit ? self : String(prefix(limit - 1)) + "…"
    }
}
