import Foundation
import Synchronization
import Tensor
import Workbench

/// Where one execute_request's side output goes: iopub messages parented to the request, published at once so
/// they always precede the reply and the final idle. Progress becomes one display_data per bar, redrawn in place
/// with update_display_data (throttled); input becomes an input_request on stdin.
final class KernelOutputSink: OutputSink {
    private let messenger: KernelMessenger
    private let request: WireMessage
    private let silent: Bool
    private let allowStdin: Bool
    private let cancellation: CancellationFlag
    private let state: KernelState
    private let bars = Mutex<[String: Bar]>([:])

    /// Minimum time between two redraws of one bar; the first and the last state are always sent.
    static let redrawInterval: Double = 0.1

    private struct Bar {
        var displayID: String
        var lastSent: Double
        var unsent: ProgressUpdate?
        var latest: ProgressUpdate
        /// Whether an update_display_data went out: until one does, text/plain shows only the opening line.
        var updated = false
    }

    init(messenger: KernelMessenger, request: WireMessage, silent: Bool, allowStdin: Bool,
         cancellation: CancellationFlag, state: KernelState) {
        self.messenger = messenger
        self.request = request
        self.silent = silent
        self.allowStdin = allowStdin
        self.cancellation = cancellation
        self.state = state
    }

    func stream(_ text: String, name: StreamName) {
        guard !silent, !text.isEmpty else { return }
        messenger.publish("stream", ["name": .string(name.rawValue), "text": .string(text)], parent: request.header)
    }

    func display(_ bundle: MimeBundle) {
        guard !silent else { return }
        messenger.publish("display_data", ["data": .strings(KernelCore.jupyterData(bundle)), "metadata": [:], "transient": [:]],
                          parent: request.header)
    }

    func progress(_ update: ProgressUpdate, id: String) {
        guard !silent else { return }
        let now = Self.now()
        let action: (String, String, ProgressUpdate)? = bars.withLock { bars in
            guard var bar = bars[id] else {
                let displayID = "nsae-progress-" + UUID().uuidString.lowercased()
                bars[id] = Bar(displayID: displayID, lastSent: now, unsent: nil, latest: update)
                return ("display_data", displayID, update)
            }
            bar.latest = update
            let due = now - bar.lastSent >= Self.redrawInterval || (update.total > 0 && update.done >= update.total)
            if due {
                bar.lastSent = now
                bar.unsent = nil
                bar.updated = true
            } else {
                bar.unsent = update
            }
            bars[id] = bar
            return due ? ("update_display_data", bar.displayID, update) : nil
        }
        if let (type, displayID, update) = action { publishBar(type, displayID, update, finished: false) }
    }

    func progressDone(id: String) {
        guard let bar = bars.withLock({ $0.removeValue(forKey: id) }) else { return }
        finalize(bar)
    }

    /// Draws every bar still open in its final state (the command ended, maybe by an error or an interrupt).
    func finish() {
        let open = bars.withLock { bars in defer { bars.removeAll() }; return Array(bars.values) }
        for bar in open { finalize(bar) }
    }

    /// Redraws a closing bar only when the display does not already hold its last state (no update went out
    /// yet, an update was held back by the throttle, or the bar stopped short and gets its "(stopped)" mark).
    private func finalize(_ bar: Bar) {
        let stoppedShort = bar.latest.total > 0 && bar.latest.done < bar.latest.total
        guard !bar.updated || bar.unsent != nil || stoppedShort else { return }
        publishBar("update_display_data", bar.displayID, bar.latest, finished: true)
    }

    private func publishBar(_ type: String, _ displayID: String, _ update: ProgressUpdate, finished: Bool) {
        let bundle = type == "display_data" ? ProgressDisplay.opening(update) : ProgressDisplay.bundle(update, finished: finished)
        messenger.publish(type, ["data": .strings(bundle.data), "metadata": [:],
                                 "transient": ["display_id": .string(displayID)]], parent: request.header)
    }

    /// Asks the front end for a line: input_request on stdin with the execute_request's identities (the client's
    /// stdin socket shares its shell identity), then waits for the matching input_reply. nil when the request
    /// did not allow stdin, or when the command is interrupted or the kernel stops while waiting.
    func input(prompt: String, password: Bool) -> String? {
        guard allowStdin, !silent else { return nil }
        // Stale replies to an earlier, abandoned prompt must not answer this one.
        while messenger.transport.receiveStdin(timeoutMs: 0) != nil {}
        let header = messenger.headers.header(msgType: "input_request")
        messenger.transport.send(WireMessage(identities: request.identities, header: header,
                                             parentHeader: request.header,
                                             content: ["prompt": .string(prompt), "password": .bool(password)]),
                                 on: .stdin)
        while !cancellation.isCancelled && !state.isStopping {
            guard let reply = messenger.transport.receiveStdin(timeoutMs: 50) else { continue }
            guard reply.msgType == "input_reply", reply.parentHeader["msg_id"] == header["msg_id"] else {
                KernelLog.warning("stdin: ignoring \(reply.msgType) that does not answer the pending input_request")
                continue
            }
            return reply.content["value"]?.stringValue ?? ""
        }
        return nil
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
    }
}
