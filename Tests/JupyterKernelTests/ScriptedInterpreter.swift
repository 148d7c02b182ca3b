import Foundation
import Tensor
import Workbench

/// A tiny interpreter for exercising the kernel protocol without the Workbench: each line is `VERB ARGS`.
/// echo TEXT / warn TEXT (stdout / stderr), sum N… (result), show (display_data), fail (error with a caret),
/// sleep MS (cancellable, with progress), ask PROMPT (stdin), x (the result "42").
final class ScriptedInterpreter: Interpreter {
    static let verbs = ["ask", "echo", "fail", "show", "sleep", "sum", "warn"]
    var executed: [String] = []

    var banner: String { "scripted test interpreter" }
    var languageVersion: String { "0.0-test" }

    func execute(_ code: String, sink: OutputSink, cancellation: CancellationFlag) -> ExecutionOutcome {
        executed.append(code)
        var result: MimeBundle?
        for (index, line) in code.split(separator: "\n").enumerated() {
            let words = line.split(separator: " ").map(String.init)
            guard let verb = words.first else { continue }
            let rest = words.dropFirst().joined(separator: " ")
            result = nil
            switch verb {
            case "echo": sink.stream(rest + "\n", name: .stdout)
            case "warn": sink.stream(rest + "\n", name: .stderr)
            case "sum":
                let total = words.dropFirst().compactMap { Int($0) }.reduce(0, +)
                result = MimeBundle(["text/plain": String(total)])
            case "x": result = MimeBundle(["text/plain": "42", "application/json": "42"])
            case "show": sink.display(MimeBundle(["text/plain": "shown", "text/html": "<b>shown</b>"]))
            case "fail":
                return .error(name: "TestError", message: "line \(index + 1): fail\n  \(line)\n  ^\nfailed on purpose",
                              line: index + 1)
            case "sleep":
                let steps = max(1, (Int(rest) ?? 100) / 10)
                for step in 0..<steps {
                    if cancellation.isCancelled {
                        sink.progressDone(id: "sleep")
                        return .interrupted(message: "interrupted at step \(step) of \(steps)")
                    }
                    sink.progress(ProgressUpdate(task: "sleep", done: step + 1, total: steps), id: "sleep")
                    usleep(10_000)
                }
                sink.progressDone(id: "sleep")
            case "ask":
                guard let answer = sink.input(prompt: rest, password: false) else {
                    return .error(name: "InputError", message: "no input available", line: index + 1)
                }
                sink.stream("got \(answer)\n", name: .stdout)
            default:
                return .error(name: "UnknownVerb", message: "line \(index + 1): unknown verb '\(verb)'", line: index + 1)
            }
        }
        return .ok(result: result)
    }

    func complete(_ code: String, cursor: Int) -> Completion {
        let scalars = Array(code.unicodeScalars)
        var start = cursor
        while start > 0 && scalars[start - 1] != " " && scalars[start - 1] != "\n" { start -= 1 }
        let prefix = String(String.UnicodeScalarView(scalars[start..<cursor]))
        return Completion(matches: Self.verbs.filter { $0.hasPrefix(prefix) }, start: start, end: cursor)
    }

    func inspect(_ code: String, cursor: Int) -> MimeBundle? {
        let word = code.split(separator: " ").first.map(String.init) ?? ""
        return Self.verbs.contains(word) ? MimeBundle(["text/plain": "\(word): a test verb"]) : nil
    }

    func isComplete(_ code: String) -> Completeness {
        if code.hasSuffix("\\") || code.filter({ $0 == "\"" }).count % 2 == 1 { return .incomplete(indent: "") }
        let verb = code.split(separator: " ").first.map(String.init) ?? ""
        return Self.verbs.contains(verb) || verb == "x" || verb.isEmpty ? .complete : .invalid
    }
}
