import Foundation
import Synchronization
import Tensor

/// Runs a script like `nsae run` does (text on the terminal, progress on stderr, through the `terminal` sink and
/// `writeOut` that the front end owning the terminal gives) and also keeps every statement's value and every figure
/// shown along the way, to write them as a standalone HTML report and a JSON of every number.
public final class ReportingRunner: StatementObserver {
    public struct Entry {
        public var line: Int
        public var code: String
        public var section: String
        public var name: String?
        public var value: Value
        public var displays: [MimeBundle]
    }

    public private(set) var entries: [Entry] = []
    private let session: Session
    private let sink: RecordingSink
    private let lines: [String]
    private let sectionOfLine: [Int: String]
    private let source: String
    private let writeOut: @Sendable (String) -> Void

    public init(source: String, session: Session = Session(), terminal: OutputSink,
                writeOut: @escaping @Sendable (String) -> Void) {
        self.source = source
        self.session = session
        self.writeOut = writeOut
        sink = RecordingSink(terminal)
        lines = source.components(separatedBy: "\n")
        var sections: [Int: String] = [:]
        var current = "Setup"
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("## ") { current = String(trimmed.dropFirst(3)) }
            sections[index + 1] = current
        }
        sectionOfLine = sections
    }

    /// Runs the script; returns the outcome (values bound before an error stay in `entries`).
    public func run(cancellation: CancellationFlag) -> ExecutionOutcome {
        session.run(source, sink: sink, cancellation: cancellation, observer: self)
    }

    // MARK: StatementObserver

    public func willRun(_ statement: Statement) {
        sink.terminal.stream("» \(code(of: statement))\n", name: .stderr)
        sink.clear()
    }

    public func didRun(_ statement: Statement, value: Value) {
        if statement.target == nil {
            let text = Rendering.text(value)
            if !text.isEmpty { writeOut(text + "\n") }
        }
        let displays = sink.recorded
        entries.append(Entry(line: statement.line,
                             code: code(of: statement),
                             section: sectionOfLine[statement.line] ?? "",
                             name: statement.target?.value, value: value, displays: displays))
    }


    /// The source line of a statement, trimmed (the first line of a continued statement).
    private func code(of statement: Statement) -> String {
        statement.line <= lines.count ? lines[statement.line - 1].trimmingCharacters(in: .whitespaces) : ""
    }

    // MARK: Reports

    /// Every statement's value as JSON (tables keep numbers as numbers), with the figures shown along the way.
    public func resultsJSON(title: String, settings: [(String, JSON)]) -> JSON {
        let statements: [JSON] = entries.map { entry in
            let displays: [JSON] = entry.displays.map { bundle in
                if let text = bundle.data["application/json"], let parsed = try? JSON.parse(text) { return parsed }
                return .string(bundle.plain)
            }
            return .object([
                ("line", .number(Double(entry.line))), ("code", .string(entry.code)), ("section", .string(entry.section)),
                ("name", entry.name.map(JSON.string) ?? .null), ("type", .string(entry.value.typeName)),
                ("value", Rendering.json(entry.value)), ("displays", .array(displays)),
            ])
        }
        return .object([("title", .string(title)), ("nsae_version", .string(Session.version)),
                        ("settings", .object(settings)), ("script", .string(source)), ("statements", .array(statements))])
    }

    /// A standalone HTML page: one section per `## ` heading of the script, each statement with its code, its
    /// value (tables as HTML, figures as inline SVG) and the figures it showed.
    public func reportHTML(title: String, intro: String) -> String {
        var body = "<h1>\(HTMLRenderer.escape(title))</h1>\n<p>\(HTMLRenderer.escape(intro))</p>\n"
        var currentSection: String?
        for entry in entries {
            if entry.section != currentSection {
                currentSection = entry.section
                body += "<h2>\(HTMLRenderer.escape(entry.section))</h2>\n"
            }
            body += "<pre style=\"background:#f4f4f4;padding:4px 8px;margin:12px 0 4px 0\">\(HTMLRenderer.escape(entry.code))</pre>\n"
            for bundle in entry.displays { body += Self.html(bundle) }
            // As in a notebook: a bound value or an empty result shows nothing of its own.
            let shown: Bool
            if case .none = entry.value { shown = false } else { shown = entry.name == nil }
            if shown { body += Self.html(Rendering.bundle(entry.value)) }
        }
        body += "<h2>The script</h2>\n<pre style=\"background:#f4f4f4;padding:8px\">\(HTMLRenderer.escape(source))</pre>\n"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(HTMLRenderer.escape(title))</title></head>
        <body style="font-family:system-ui,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222">
        \(body)</body></html>

        """
    }

    private static func html(_ bundle: MimeBundle) -> String {
        if let svg = bundle.data["image/svg+xml"] { return "<div style=\"margin:8px 0\">\(svg)</div>\n" }
        if let html = bundle.data["text/html"] { return "<div style=\"margin:8px 0;overflow-x:auto\">\(html)</div>\n" }
        return "<pre>\(HTMLRenderer.escape(bundle.plain))</pre>\n"
    }
}

/// Forwards everything to the terminal and keeps the figures and tables a statement displays along the way.
private final class RecordingSink: OutputSink {
    let terminal: OutputSink
    private let displays = Mutex<[MimeBundle]>([])

    init(_ terminal: OutputSink) { self.terminal = terminal }

    var recorded: [MimeBundle] { displays.withLock { $0 } }
    func clear() { displays.withLock { $0 = [] } }

    func stream(_ text: String, name: StreamName) { terminal.stream(text, name: name) }
    func display(_ bundle: MimeBundle) {
        displays.withLock { $0.append(bundle) }
        terminal.display(bundle)
    }
    func progress(_ update: ProgressUpdate, id: String) { terminal.progress(update, id: id) }
    func progressDone(id: String) { terminal.progressDone(id: id) }
    func input(prompt: String, password: Bool) -> String? { nil }
}
