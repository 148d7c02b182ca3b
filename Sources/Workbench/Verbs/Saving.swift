import Foundation
import Synchronization
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
            case "svg", "png":
                guard !table.figures.isEmpty else {
                    throw call.error(atArgument: 1, "this table came with no figure; a table is saved as .csv or .json")
                }
                // One file per figure the command showed: PATH for the first, PATH-2.svg, PATH-3.svg… after it.
                for (i, figure) in table.figures.enumerated() {
                    let target = i == 0 ? url : numbered(url, i + 1)
                    try saveFigure(figure, to: target, ext: ext, call: call)
                }
            default:
                let figureNote = table.figures.isEmpty ? "" : " (or its figure as .svg or .png)"
                throw call.error(atArgument: 1, "a table is saved as .csv or .json\(figureNote); `\(path)` has neither extension")
            }
        case .figure(let figure):
            guard ext == "svg" || ext == "png" else { throw call.error(atArgument: 1, "a figure is saved as .svg or .png; `\(path)` is neither") }
            try saveFigure(figure, to: url, ext: ext, call: call)
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

    /// `fit.svg` → `fit-2.svg`.
    static func numbered(_ url: URL, _ index: Int) -> URL {
        let ext = url.pathExtension
        return url.deletingPathExtension().deletingLastPathComponent()
            .appendingPathComponent(url.deletingPathExtension().lastPathComponent + "-\(index)").appendingPathExtension(ext)
    }

    static func saveFigure(_ figure: Figure, to url: URL, ext: String, call: Call) throws {
        let svg = SVGRenderer.figure(figure) + "\n"
        if ext == "svg" { return try write(svg, to: url, call: call) }
        let png = try rasterize(svg, call: call)
        do { try AtomicFile.write(png, to: url.path) } catch {
            throw call.error(atArgument: 1, "cannot write `\(url.path)`: \(error)")
        }
    }

    /// PNG at twice the SVG's size, by librsvg's `rsvg-convert` (Debian package librsvg2-bin).
    static func rasterize(_ svg: String, call: Call) throws -> Data {
        let searchPath = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        guard let tool = searchPath.map({ "\($0)/rsvg-convert" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw call.error(atArgument: 1, "saving a .png needs `rsvg-convert` (Debian package librsvg2-bin, installed by scripts/setup); save as .svg instead")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["--format=png", "--zoom=2"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            throw call.error(atArgument: 1, "cannot start \(tool): \(error)")
        }
        // Read while writing: the PNG is larger than a pipe buffer.
        let collected = Mutex(Data())
        let done = DispatchSemaphore(value: 0)
        let reading = output.fileHandleForReading
        DispatchQueue.global().async {
            let data = reading.readDataToEndOfFile()
            collected.withLock { $0 = data }
            done.signal()
        }
        input.fileHandleForWriting.write(Data(svg.utf8))
        try? input.fileHandleForWriting.close()
        done.wait()
        process.waitUntilExit()
        let png = collected.withLock { $0 }
        guard process.terminationStatus == 0, png.starts(with: [0x89, 0x50, 0x4E, 0x47]) else {
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw call.error(atArgument: 1, "rsvg-convert could not rasterise the figure: \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return png
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
