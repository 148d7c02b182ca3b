import Tensor
import Workbench

/// The protocol semantics of the shell channel, independent of sockets (xeus's kernel core): dispatch by
/// msg_type inside busy/idle, execution counting, history, stop_on_error aborts, and the replies built from what
/// the `Interpreter` answers. Runs on the shell thread only.
public final class KernelCore {
    let interpreter: any Interpreter
    let messenger: KernelMessenger
    let state: KernelState
    let kernelInfo: JSON

    public internal(set) var executionCount = 0
    public internal(set) var history = History()
    /// Requests taken off the shell socket while aborting after an error; handled right after the failing one.
    var deferred: [(message: WireMessage, abort: Bool)] = []
    /// How long after a failed execute queued requests are still aborted (they were sent before the client saw
    /// the error: the window ends before the error reply goes out).
    public var abortWindowMs = 50

    /// `notice` is appended to the banner (the warning of an unsigned connection).
    public init(interpreter: any Interpreter, messenger: KernelMessenger, state: KernelState,
                implementationVersion: String = "0.1.0", notice: String? = nil) {
        self.interpreter = interpreter
        self.messenger = messenger
        self.state = state
        let banner = notice.map { interpreter.banner + "\n\n" + $0 } ?? interpreter.banner
        self.kernelInfo = KernelCore.kernelInfoContent(banner: banner,
                                                       languageVersion: interpreter.languageVersion,
                                                       implementationVersion: implementationVersion)
    }

    /// Handles one shell request and then anything deferred by it. Never throws and never traps on bad input:
    /// a malformed request gets an error reply or a log line, and the kernel carries on.
    public func handleShell(_ message: WireMessage) {
        dispatch(message, abort: false)
        while !deferred.isEmpty {
            let next = deferred.removeFirst()
            dispatch(next.message, abort: next.abort)
        }
    }

    func dispatch(_ message: WireMessage, abort: Bool) {
        let type = message.msgType
        KernelLog.debug("shell: \(type) \(message.msgID)")
        let extra: [(String, JSON)] = type == "execute_request" ? [("execution_count", .int(executionCount))] : []
        if messenger.refuseIfUnreadable(message, on: .shell, extra: extra) { return }
        switch type {
        case "execute_request":
            messenger.whileBusy(message) { abort ? replyAborted(message) : execute(message) }
        case "kernel_info_request":
            // Clients count as "ready" only once they also see iopub traffic for this request (the status
            // messages). A client that just connected may not be subscribed yet: give it a moment, or it
            // retries only after a 0.2 s timeout.
            messenger.transport.awaitIOPubSubscriber(timeoutMs: 300)
            messenger.whileBusy(message) { messenger.reply(to: message, kernelInfo, on: .shell) }
        case "complete_request":
            messenger.whileBusy(message) { complete(message) }
        case "inspect_request":
            messenger.whileBusy(message) { inspect(message) }
        case "is_complete_request":
            messenger.whileBusy(message) { isComplete(message) }
        case "history_request":
            messenger.whileBusy(message) { historyReply(message) }
        case "comm_info_request":
            messenger.whileBusy(message) {
                messenger.reply(to: message, ["status": "ok", "comms": [:]], on: .shell)
            }
        case "comm_open":
            // No comm targets exist: close the comm at once so the front end does not wait on it.
            messenger.whileBusy(message) {
                messenger.publish("comm_close", ["comm_id": message.content["comm_id"] ?? "", "data": [:]],
                                  parent: message.header)
            }
        case "comm_msg", "comm_close":
            messenger.whileBusy(message) {}
        case "shutdown_request", "interrupt_request":
            // Deprecated on shell (they belong on control) but still accepted.
            messenger.whileBusy(message) { ControlHandler.handleControlRequest(message, on: .shell, messenger: messenger,
                                                                               state: state, kernelInfo: kernelInfo) }
        default:
            messenger.refuseUnknown(message, on: .shell)
        }
    }

    // MARK: - Simple handlers

    func complete(_ message: WireMessage) {
        let code = message.content["code"]?.stringValue ?? ""
        let cursor = Self.clampCursor(message.content["cursor_pos"], code: code)
        let completion = interpreter.complete(code, cursor: cursor)
        messenger.reply(to: message, [
            "status": "ok",
            "matches": .array(completion.matches.map { .string($0) }),
            "cursor_start": .int(completion.start),
            "cursor_end": .int(completion.end),
            "metadata": [:],
        ], on: .shell)
    }

    func inspect(_ message: WireMessage) {
        let code = message.content["code"]?.stringValue ?? ""
        let cursor = Self.clampCursor(message.content["cursor_pos"], code: code)
        let found = interpreter.inspect(code, cursor: cursor)
        let data: JSON = found.map { .strings($0.data) } ?? [:]
        messenger.reply(to: message, ["status": "ok", "found": .bool(found != nil), "data": data, "metadata": [:]],
                        on: .shell)
    }

    func isComplete(_ message: WireMessage) {
        let code = message.content["code"]?.stringValue ?? ""
        let content: JSON
        switch interpreter.isComplete(code) {
        case .complete: content = ["status": "complete"]
        case .incomplete(let indent): content = ["status": "incomplete", "indent": .string(indent)]
        case .invalid: content = ["status": "invalid"]
        }
        messenger.reply(to: message, content, on: .shell)
    }

    func historyReply(_ message: WireMessage) {
        let c = message.content
        let withOutput = c["output"]?.boolValue ?? false
        let entries: [History.Entry]
        switch c["hist_access_type"]?.stringValue ?? "tail" {
        case "range":
            entries = history.range(session: c["session"]?.intValue ?? 0, start: c["start"]?.intValue ?? 1,
                                    stop: c["stop"]?.intValue)
        case "search":
            entries = history.search(pattern: c["pattern"]?.stringValue ?? "*", n: c["n"]?.intValue,
                                     unique: c["unique"]?.boolValue ?? false)
        default:
            entries = history.tail(c["n"]?.intValue ?? 10)
        }
        let items: [JSON] = entries.map { entry in
            let input: JSON = withOutput
                ? [.string(entry.input), entry.output.map { .string($0) } ?? .null] : .string(entry.input)
            return [.int(history.sessionNumber), .int(entry.line), input]
        }
        messenger.reply(to: message, ["status": "ok", "history": .array(items)], on: .shell)
    }

    /// A cursor position in Unicode scalars (protocol 5.2+), clamped into the code; missing means the end.
    static func clampCursor(_ value: JSON?, code: String) -> Int {
        let length = code.unicodeScalars.count
        guard let position = value?.intValue else { return length }
        return min(max(0, position), length)
    }

    static func kernelInfoContent(banner: String, languageVersion: String, implementationVersion: String) -> JSON {
        [
            "status": "ok",
            "protocol_version": .string(HeaderFactory.protocolVersion),
            "implementation": "nsae",
            "implementation_version": .string(implementationVersion),
            "language_info": [
                "name": "nsae",
                "version": .string(languageVersion),
                "mimetype": "text/x-nsae",
                "file_extension": ".nsae",
                // `#` comments, double-quoted strings and NAME=VALUE options read well with shell highlighting.
                "pygments_lexer": "bash",
                "codemirror_mode": "shell",
                "nbconvert_exporter": "script",
            ],
            "banner": .string(banner),
            // The language's reference is in the kernel itself (`help`, `help VERB`, inspect): there is no
            // published web page to link to yet.
            "help_links": [],
            "debugger": false,
        ]
    }
}
