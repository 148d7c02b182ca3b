import Foundation
import Tensor
import Workbench

// `nsae run FILE.nsae [--json]`: runs statements in order, stops at the first error with exit status 1.
// Text mode prints each unbound result; JSON mode prints one object per statement (commands.md "Output").

public final class ScriptRunner: StatementObserver {
    private let session: Session
    private let sink: TerminalSink
    private let json: Bool
    private let writeOut: @Sendable (String) -> Void

    public init(session: Session = Session(), json: Bool, showProgress: Bool = true,
                writeOut: @escaping @Sendable (String) -> Void = TerminalSink.writeStdout) {
        self.session = session
        self.json = json
        self.writeOut = writeOut
        sink = TerminalSink(json: json, showProgress: showProgress, writeOut: writeOut)
    }

    /// Runs `source` and returns the process exit status: 0, 1 after an error, 130 after Ctrl-C.
    public func run(_ source: String, cancellation: CancellationFlag) -> Int32 {
        switch session.run(source, sink: sink, cancellation: cancellation, observer: self) {
        case .ok:
            return 0
        case .error(_, let message, let line):
            if json {
                writeOut(JSON.object([("line", .number(Double(line))), ("error", .string(message))]).serialized + "\n")
            } else {
                FileHandle.standardError.write(Data((message + "\n").utf8))
            }
            return 1
        case .interrupted(let message):
            if json {
                writeOut(JSON.object([("line", .number(Double(currentLine))), ("error", .string(message))]).serialized + "\n")
            } else {
                FileHandle.standardError.write(Data((message + "\n").utf8))
            }
            return 130
        }
    }

    private var currentLine = 1

    public func willRun(_ statement: Statement) {
        currentLine = statement.line
        sink.startStatement(line: statement.line)
    }

    public func didRun(_ statement: Statement, value: Value) {
        if json {
            if case .none = value, sink.sideOutputsOfStatement > 0 { return }
            let object = JSON.object([
                ("line", .number(Double(statement.line))),
                ("name", statement.target.map { .string($0.value) } ?? .null),
                ("type", .string(value.typeName)),
                ("value", Rendering.json(value)),
            ])
            writeOut(object.serialized + "\n")
        } else if statement.target == nil {
            let text = Rendering.text(value)
            if !text.isEmpty { writeOut(text + "\n") }
        }
    }
}
