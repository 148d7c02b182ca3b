import Tensor

// The interface every front end (REPL, scripts, Jupyter kernel) uses to drive the command language.
// Front ends see only these types; the language itself (lexer, parser, verbs, values) stays inside Workbench.

/// A value rendered for display: mime type → content. Always carries "text/plain"; tables add "text/html",
/// figures add "image/svg+xml" and a "text/html" <img> fallback; "application/json" holds the JSON form as text.
public struct MimeBundle: Sendable, Equatable {
    public var data: [String: String]
    public init(_ data: [String: String]) { self.data = data }
    public var plain: String { data["text/plain"] ?? "" }
}

public enum StreamName: String, Sendable { case stdout, stderr }

/// Where a running statement sends what it produces along the way. The front end decides how to show it.
public protocol OutputSink: AnyObject, Sendable {
    /// Text written by `echo` and similar (a stream message in Jupyter, the terminal in the REPL).
    func stream(_ text: String, name: StreamName)
    /// A value shown now (`show`, figures produced along the way): display_data in Jupyter.
    func display(_ bundle: MimeBundle)
    /// Progress of a long command; `id` is stable for one command so front ends can redraw in place.
    func progress(_ update: ProgressUpdate, id: String)
    /// The long command with this progress id finished (front ends may clear or finalize the bar).
    func progressDone(id: String)
    /// Asks the user for a line of input (Jupyter input_request; the terminal in the REPL). nil when unavailable.
    func input(prompt: String, password: Bool) -> String?
}

/// The result of executing a cell or a line.
public enum ExecutionOutcome: Sendable {
    /// Finished; `result` is the last statement's value when it was not bound to a name (execute_result).
    case ok(result: MimeBundle?)
    /// Stopped at an error. `message` is the full readable error (line, the line's text, a caret, what was expected).
    case error(name: String, message: String, line: Int)
    /// Stopped because the cancellation flag was set; values bound so far are kept.
    case interrupted(message: String)
}

/// Whether a piece of code is ready to run (Jupyter is_complete, REPL continuation lines).
public enum Completeness: Sendable, Equatable {
    case complete
    case incomplete(indent: String)
    case invalid
}

/// Completion candidates replacing the code between `start` and `end` (Unicode scalar offsets).
public struct Completion: Sendable, Equatable {
    public var matches: [String]
    public var start: Int
    public var end: Int
    public init(matches: [String], start: Int, end: Int) { self.matches = matches; self.start = start; self.end = end }
}

/// What a front end needs from the language. `Session` conforms; the kernel and REPL depend only on this.
public protocol Interpreter: AnyObject {
    /// Runs `code` (one or more statements), sending side output to `sink`, honouring `cancellation`.
    func execute(_ code: String, sink: OutputSink, cancellation: CancellationFlag) -> ExecutionOutcome
    /// Completion at `cursor` (Unicode scalar offset into `code`).
    func complete(_ code: String, cursor: Int) -> Completion
    /// Help text for the verb or name under the cursor, or nil.
    func inspect(_ code: String, cursor: Int) -> MimeBundle?
    func isComplete(_ code: String) -> Completeness
    /// One-paragraph banner and the language version shown by front ends.
    var banner: String { get }
    var languageVersion: String { get }
}
