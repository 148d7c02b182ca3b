import Foundation
import Tensor

// `save VALUE "PATH"`: tables to .csv or .json, figures to .svg, SAE groups to SAELens folders.

enum Saving {
    static func save(_ call: Call) throws -> Value {
        guard case .string(let path) = call.arguments[1] else { throw call.error(atArgument: 1, "expected a path") }
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension.lowercased()
        switch call.arguments[0] {
        case .table(let table):
            switch ext {
            case "csv": try write(csv(table), to: url, call: call)
            case "json": try write(Rendering.tableJSON(table).serialized + "\n", to: url, call: call)
            default: throw call.error(atArgument: 1, "a table is saved as .csv or .json; `\(path)` has neither extension")
            }
        case .figure(let figure):
            guard ext == "svg" else { throw call.error(atArgument: 1, "a figure is saved as .svg; `\(path)` is not") }
            try write(SVGRenderer.figure(figure) + "\n", to: url, call: call)
        case .object(let object):
            if let saveable = object as? SaveableObject {
                try saveable.save(to: path, call: call)
            } else {
                throw call.error(atArgument: 0, "a \(object.typeName) cannot be saved; save an sae, a table or a figure")
            }
        case let other:
            throw call.error(atArgument: 0, "a \(other.typeName) cannot be saved; save an sae, a table or a figure")
        }
        return .none
    }

    static func write(_ text: String, to url: URL, call: Call) throws {
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try AtomicFile.write(Data(text.utf8), to: url.path)
        } catch {
            throw call.error(atArgument: 1, "cannot write `\(url.path)`: \(error)")
        }
    }

    /// RFC 4180 CSV: fields with commas, quotes or newlines are quoted, quotes doubled.
    static func csv(_ table: Table) -> String {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        func cell(_ c: Cell) -> String {
            switch c {
            case .number(let v): return v.isFinite ? formatNumber(v) : ""
            case .tokens(let tokens, _): return field(tokens.map(\.text).joined())
            default: return field(c.plain)
            }
        }
        var lines = [table.columns.map(field).joined(separator: ",")]
        for row in table.rows { lines.append(row.map(cell).joined(separator: ",")) }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// An engine object that `save` knows how to write.
protocol SaveableObject: SessionObject {
    func save(to path: String, call: Call) throws
}
