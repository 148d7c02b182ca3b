import CZMQ
import Glibc
import Synchronization

/// The four message sockets of a kernel, each behind its own lock. The shell loop, the control thread and the
/// output sink all reach them through here; each lock is almost always uncontended (one socket, one thread),
/// except iopub, which shell and control both publish on.
public final class ZMQTransport: KernelTransport {
    private let shell: Mutex<ZMQSocket>
    private let control: Mutex<ZMQSocket>
    private let stdin: Mutex<ZMQSocket>
    private let iopub: Mutex<ZMQSocket>
    let signer: MessageSigner
    /// The largest message (all frames together) taken off a socket; larger ones are dropped unread.
    let maxMessageBytes: Int
    /// msg_ids of recent signed messages (nil when signing is off: then anyone may send anything anyway).
    let replays: ReplayWindow?
    /// Whether iopub has a subscriber (updated from the subscription events under the iopub lock).
    private let iopubSubscribed = Atomic<Bool>(false)

    init(shell: consuming sending ZMQSocket, control: consuming sending ZMQSocket, stdin: consuming sending ZMQSocket,
         iopub: consuming sending ZMQSocket, signer: MessageSigner, maxMessageBytes: Int) {
        self.shell = Mutex(shell)
        self.control = Mutex(control)
        self.stdin = Mutex(stdin)
        self.iopub = Mutex(iopub)
        self.signer = signer
        self.maxMessageBytes = maxMessageBytes
        self.replays = signer.isEnabled ? ReplayWindow(signer: signer) : nil
    }

    func closeAll() {
        shell.withLock { $0.close() }
        control.withLock { $0.close() }
        stdin.withLock { $0.close() }
        iopub.withLock { $0.close() }
    }

    public func send(_ message: WireMessage, on channel: KernelChannel) {
        let frames = message.frames(signer: signer)
        do {
            switch channel {
            case .shell: try shell.withLock { socket throws(ZMQError) in try socket.sendMultipart(frames) }
            case .control: try control.withLock { socket throws(ZMQError) in try socket.sendMultipart(frames) }
            case .stdin: try stdin.withLock { socket throws(ZMQError) in try socket.sendMultipart(frames) }
            }
        } catch {
            KernelLog.error("sending \(message.msgType) on \(channel.rawValue) failed: \(error)")
        }
    }

    public func publish(_ message: WireMessage) {
        let frames = message.frames(signer: signer)
        do {
            try iopub.withLock { socket throws(ZMQError) in try socket.sendMultipart(frames) }
        } catch {
            KernelLog.error("publishing \(message.msgType) failed: \(error)")
        }
    }

    /// Raw frames of the next message on `channel`, waiting up to `timeoutMs`.
    func receive(on channel: KernelChannel, timeoutMs: Int) -> [[UInt8]]? {
        switch channel {
        case .shell: return shell.withLock { Self.receive(from: $0, channel, timeoutMs, maxMessageBytes) }
        case .control: return control.withLock { Self.receive(from: $0, channel, timeoutMs, maxMessageBytes) }
        case .stdin: return stdin.withLock { Self.receive(from: $0, channel, timeoutMs, maxMessageBytes) }
        }
    }

    private static func receive(from socket: ZMQSocket, _ channel: KernelChannel, _ timeoutMs: Int,
                                _ byteLimit: Int) -> [[UInt8]]? {
        guard socket.waitReadable(timeoutMs: timeoutMs) else { return nil }
        do { return try socket.receiveMultipart(dontWait: true, byteLimit: byteLimit) } catch {
            if error.code == EMSGSIZE {
                KernelLog.warning("\(channel.rawValue): \(error.operation) (see --max-message-bytes)")
            } else {
                KernelLog.error("receive on \(channel.rawValue) failed: \(error)")
            }
            return nil
        }
    }

    /// Decodes and authenticates frames. A message that cannot be answered (bad signature, no usable header) or
    /// that replays a recent signed message (the same signature) is logged and dropped (nil); a signed request with unreadable frames is
    /// returned with its `problem` set, for an error reply (logged when it is answered).
    func decode(_ frames: [[UInt8]], channel: KernelChannel) -> WireMessage? {
        let message: WireMessage
        do { message = try WireMessage.decodeRequest(frames, signer: signer) } catch {
            KernelLog.warning("\(channel.rawValue): dropping a message (\(frames.count) frames): \(error)")
            return nil
        }
        // decodeRequest verified the frame after the delimiter as the signature.
        if let replays, let delimiter = frames.firstIndex(of: WireMessage.delimiter),
           !replays.admit(signature: frames[delimiter + 1]) {
            KernelLog.warning("\(channel.rawValue): dropping a replayed signed message (msg_id \(Self.excerpt(message.msgID)), "
                              + "\(message.msgType)): its signature was seen among the last \(replays.capacity)")
            return nil
        }
        return message
    }

    /// A msg_id short enough for a log line.
    static func excerpt(_ id: String) -> String { id.count <= 80 ? "'\(id)'" : "'\(id.prefix(80))…'" }

    public func receiveStdin(timeoutMs: Int) -> WireMessage? {
        guard let frames = receive(on: .stdin, timeoutMs: timeoutMs) else { return nil }
        return decode(frames, channel: .stdin)
    }

    /// iopub is an XPUB socket: it behaves as PUB for sending and reports subscriptions as messages,
    /// `\u{1}topic` when the first subscriber of a topic arrives, `\u{0}topic` when the last one leaves.
    public func awaitIOPubSubscriber(timeoutMs: Int) {
        let deadline = KernelOutputSink.now() + Double(timeoutMs) / 1000
        while true {
            let subscribed = iopub.withLock { socket in
                while let event = try? socket.receiveMultipart(dontWait: true) {
                    guard let first = event.first?.first else { continue }
                    if first == 1 || first == 0 { iopubSubscribed.store(first == 1, ordering: .relaxed) }
                }
                return iopubSubscribed.load(ordering: .relaxed)
            }
            if subscribed || KernelOutputSink.now() >= deadline { return }
            usleep(2_000)
        }
    }

    public func drainShell(windowMs: Int) -> [WireMessage] {
        var taken: [WireMessage] = []
        let deadline = KernelOutputSink.now() + Double(windowMs) / 1000
        while true {
            let remaining = Int(((deadline - KernelOutputSink.now()) * 1000).rounded(.up))
            guard let frames = receive(on: .shell, timeoutMs: max(0, remaining)) else { break }
            if let message = decode(frames, channel: .shell) { taken.append(message) }
        }
        return taken
    }
}
