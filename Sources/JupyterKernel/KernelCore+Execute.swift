import Tensor
import Workbench

extension KernelCore {
    /// execute_request: execute_input, the command's outputs, execute_result or error, then the reply
    /// (busy/idle come from the dispatcher). After a failure with stop_on_error, requests already queued are
    /// aborted rather than run on top of a failed cell.
    func execute(_ request: WireMessage) {
        let c = request.content
        let code = c["code"]?.stringValue ?? ""
        let silent = c["silent"]?.boolValue ?? false
        let storeHistory = !silent && (c["store_history"]?.boolValue ?? true)
        let stopOnError = c["stop_on_error"]?.boolValue ?? true
        let allowStdin = c["allow_stdin"]?.boolValue ?? false

        if storeHistory {
            executionCount += 1
            history.record(line: executionCount, input: code)
        }
        let count = executionCount
        if !silent {
            messenger.publish("execute_input", ["code": .string(code), "execution_count": .int(count)],
                              parent: request.header)
        }

        let cancellation = CancellationFlag()
        let sink = KernelOutputSink(messenger: messenger, request: request, silent: silent, allowStdin: allowStdin,
                                    cancellation: cancellation, state: state)
        state.beginExecution(cancellation)
        let outcome = interpreter.execute(code, sink: sink, cancellation: cancellation)
        state.endExecution()
        sink.finish()

        var reply: JSON
        switch outcome {
        case .ok(let result):
            if let result, !silent {
                messenger.publish("execute_result", ["execution_count": .int(count), "data": .strings(Self.jupyterData(result)),
                                                     "metadata": [:]], parent: request.header)
                if storeHistory { history.recordOutput(line: count, output: result.plain) }
            }
            reply = ["status": "ok", "execution_count": .int(count), "payload": [],
                     "user_expressions": evaluateUserExpressions(c["user_expressions"])]
        case .error(let name, let message, _):
            reply = publishError(name: name, message: message, request: request, silent: silent, count: count)
        case .interrupted(let message):
            reply = publishError(name: "Interrupted", message: message.isEmpty ? "interrupted" : message,
                                 request: request, silent: silent, count: count)
        }
        if reply["status"] == "error" && stopOnError && !silent {
            deferAbortingQueuedExecutes()
        }
        messenger.reply(to: request, reply, on: .shell)
    }

    /// Publishes the error message and returns the error reply: ename, the first line as evalue, and the whole
    /// readable message (line, text, caret) as the traceback lines front ends print.
    func publishError(name: String, message: String, request: WireMessage, silent: Bool, count: Int) -> JSON {
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false).map { JSON.string(String($0)) }
        let evalue = message.split(separator: "\n").first.map(String.init) ?? message
        let error: JSON = ["ename": .string(name), "evalue": .string(evalue), "traceback": .array(lines)]
        if !silent { messenger.publish("error", error, parent: request.header) }
        return error.setting("status", "error").setting("execution_count", .int(count))
    }

    /// The reply to an execute_request dropped because an earlier one failed: status "abort" (the spelling the
    /// message schema accepts) and the execution count, without which front ends leave the cell "running".
    func replyAborted(_ request: WireMessage) {
        KernelLog.debug("aborting queued execute_request \(request.msgID) after an error")
        messenger.reply(to: request, ["status": "abort", "execution_count": .int(executionCount),
                                      "ename": "Aborted", "evalue": "an earlier cell failed", "traceback": []],
                        on: .shell)
    }

    func deferAbortingQueuedExecutes() {
        for message in messenger.transport.drainShell(windowMs: abortWindowMs) {
            deferred.append((message, message.msgType == "execute_request"))
        }
    }

    /// user_expressions are evaluated after the code, silently; each gets its value as a mime bundle or an error.
    func evaluateUserExpressions(_ expressions: JSON?) -> JSON {
        guard let expressions = expressions?.objectValue, !expressions.isEmpty else { return [:] }
        var results: [(String, JSON)] = []
        let sink = SilentSink()
        for (name, expression) in expressions {
            let code = expression.stringValue ?? ""
            switch interpreter.execute(code, sink: sink, cancellation: CancellationFlag()) {
            case .ok(let value):
                results.append((name, ["status": "ok", "data": .strings(Self.jupyterData(value ?? MimeBundle([:]))),
                                       "metadata": [:]]))
            case .error(let ename, let message, _):
                results.append((name, ["status": "error", "ename": .string(ename), "evalue": .string(message),
                                       "traceback": [.string(message)]]))
            case .interrupted(let message):
                results.append((name, ["status": "error", "ename": "Interrupted", "evalue": .string(message),
                                       "traceback": []]))
            }
        }
        return .object(results)
    }

    /// The mime bundle as Jupyter gets it. text/plain is always present. application/json is left out: the
    /// Workbench carries it as text (for `--json`), Jupyter wants an object there, and JupyterLab ranks its JSON
    /// tree viewer above HTML tables and figures, so sending it would hide them.
    static func jupyterData(_ bundle: MimeBundle) -> [String: String] {
        var data = bundle.data
        data["application/json"] = nil
        if data["text/plain"] == nil { data["text/plain"] = "" }
        return data
    }
}

/// Swallows everything: for user_expressions, which must not produce output.
final class SilentSink: OutputSink {
    func stream(_ text: String, name: StreamName) {}
    func display(_ bundle: MimeBundle) {}
    func progress(_ update: ProgressUpdate, id: String) {}
    func progressDone(id: String) {}
    func input(prompt: String, password: Bool) -> String? { nil }
}
