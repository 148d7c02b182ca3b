import Workbench
import Foundation
import Synchronization
@testable import JupyterKernel

/// A transport that records what the kernel sends, and serves queued shell and stdin messages from lists.
final class RecordingTransport: KernelTransport {
    struct Sent: Sendable { var channel: String; var message: WireMessage }
    private let log = Mutex<[Sent]>([])
    private let queuedShell = Mutex<[WireMessage]>([])
    private let stdinReplies = Mutex<[WireMessage]>([])
    /// Answers each input_request with this value (nil: never answer).
    let inputAnswer = Mutex<String?>(nil)

    var sent: [Sent] { log.withLock { $0 } }
    var published: [WireMessage] { sent.filter { $0.channel == "iopub" }.map(\.message) }
    func replies(on channel: String) -> [WireMessage] { sent.filter { $0.channel == channel }.map(\.message) }
    func clear() { log.withLock { $0.removeAll() } }

    func queueShell(_ message: WireMessage) { queuedShell.withLock { $0.append(message) } }

    func send(_ message: WireMessage, on channel: KernelChannel) {
        log.withLock { $0.append(Sent(channel: channel.rawValue, message: message)) }
        if channel == .stdin, message.msgType == "input_request", let answer = inputAnswer.withLock({ $0 }) {
            stdinReplies.withLock {
                $0.append(WireMessage(header: ["msg_id": "r", "msg_type": "input_reply"],
                                      parentHeader: message.header, content: ["value": .string(answer)]))
            }
        }
    }

    func publish(_ message: WireMessage) { log.withLock { $0.append(Sent(channel: "iopub", message: message)) } }

    func receiveStdin(timeoutMs: Int) -> WireMessage? {
        if let reply = stdinReplies.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return reply }
        if timeoutMs > 0 { usleep(useconds_t(min(timeoutMs, 5) * 1000)) }
        return nil
    }

    func drainShell(windowMs: Int) -> [WireMessage] { queuedShell.withLock { q in defer { q.removeAll() }; return q } }
}

func request(_ type: String, _ content: JSON = [:], id: String = UUID().uuidString) -> WireMessage {
    WireMessage(identities: [Array("client".utf8)],
                header: ["msg_id": .string(id), "msg_type": .string(type), "session": "c", "username": "t",
                         "date": "2026-01-01T00:00:00Z", "version": "5.3"],
                content: content)
}
