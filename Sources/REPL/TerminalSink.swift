import Foundation
import Synchronization
import Tensor
import Workbench

// Output sinks for terminal front ends: the REPL and `nsae run` in text mode write values as text, progress as a
// live bar on stderr; in `--json` mode stdout carries one JSON object per line and progress still goes to stderr.

public final class TerminalSink: OutputSink {
    private struct State {
        var bar: ProgressBar?
        var currentLine = 1
        /// How many stream/display objects the current statement wrote (JSON mode drops echo's none result).
        var sideOutputs = 0
    }

    private let state = Mutex(State())
    public let json: Bool
    /// Where stdout text goes (tests capture it).
    let writeOut: @Sendable (String) -> Void

    /// `showProgress: false` drops progress (tests); otherwise it is drawn on stderr.
    public init(json: Bool = false, showProgress: Bool = true,
                writeOut: @escaping @Sendable (String) -> Void = TerminalSink.writeStdout) {
        self.json = json
        self.writeOut = writeOut
        if showProgress { state.withLock { $0.bar = ProgressBar() } }
    }

    /// The line of the statement now running (JSON objects carry it).
    public func startStatement(line: Int) {
        state.withLock { $0.currentLine = line; $0.sideOutputs = 0 }
    }

    public var sideOutputsOfStatement: Int { state.withLock { $0.sideOutputs } }

    public func stream(_ text: String, name: StreamName) {
        state.withLock { $0.bar?.clearForOutput() }
        if json {
            let line = state.withLock { s in s.sideOutputs += 1; return s.currentLine }
            writeOut(JSON.object([("line", .number(Double(line))), ("type", .string("stream")),
                                                  ("value", .string(text.hasSuffix("\n") ? String(text.dropLast()) : text))]).serialized + "\n")
        } else if name == .stderr {
            FileHandle.standardError.write(Data(text.utf8))
        } else {
            writeOut(text)
        }
    }

    public func display(_ bundle: MimeBundle) {
        state.withLock { $0.bar?.clearForOutput() }
        if json {
            let line = state.withLock { s in s.sideOutputs += 1; return s.currentLine }
            let value = bundle.data["application/json"] ?? JSON.string(bundle.plain).serialized
            writeOut("{\"line\": \(line), \"type\": \"display\", \"value\": \(value)}\n")
        } else {
            writeOut(bundle.plain + "\n")
        }
    }

    public func progress(_ update: ProgressUpdate, id: String) {
        state.withLock { $0.bar?.update(update, id: id) }
    }

    public func progressDone(id: String) {
        state.withLock { $0.bar?.done(id: id) }
    }

    public func input(prompt: String, password: Bool) -> String? {
        writeOut(prompt)
        return readLine()
    }

    /// Unbuffered write so output interleaves correctly with the progress bar on stderr.
    @Sendable public static func writeStdout(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
