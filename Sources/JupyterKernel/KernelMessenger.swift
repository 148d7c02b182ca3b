import Workbench

/// The channels a kernel replies and publishes on. `ZMQTransport` is the real one; tests record messages instead.
public protocol KernelTransport: Sendable {
    /// Sends a reply on shell, control or stdin, routed by `message.identities`.
    func send(_ message: WireMessage, on channel: KernelChannel)
    /// Broadcasts on iopub (`message.identities` holds the topic).
    func publish(_ message: WireMessage)
    /// Waits up to `timeoutMs` for a message on stdin (an input_reply).
    func receiveStdin(timeoutMs: Int) -> WireMessage?
    /// Shell requests already queued now or arriving within `windowMs`, taken off the socket.
    func drainShell(windowMs: Int) -> [WireMessage]
    func awaitIOPubSubscriber(timeoutMs: Int)
}

extension KernelTransport {
    /// Waits (up to `timeoutMs`) until some client subscribes to iopub, so the first status messages are not lost
    /// to the PUB/SUB "slow joiner" effect. Transports that cannot tell return at once.
    public func awaitIOPubSubscriber(timeoutMs: Int) {}
}

public enum KernelChannel: String, Sendable { case shell, control, stdin }

/// Builds and sends messages: fresh headers, parent headers copied from the request, busy/idle around requests.
/// Shared by the shell loop and the control thread.
public struct KernelMessenger: Sendable {
    public let transport: any KernelTransport
    public let headers: HeaderFactory

    public init(transport: any KernelTransport, headers: HeaderFactory) {
        self.transport = transport
        self.headers = headers
    }

    public func publish(_ msgType: String, _ content: JSON, parent: JSON, metadata: JSON = [:]) {
        let topic = Array("kernel.\(headers.session).\(msgType)".utf8)
        transport.publish(WireMessage(identities: [topic], header: headers.header(msgType: msgType),
                                      parentHeader: parent, metadata: metadata, content: content))
    }

    public func publishStatus(_ state: String, parent: JSON) {
        publish("status", ["execution_state": .string(state)], parent: parent)
    }

    /// `<x>_reply` to `<x>_request`, on the request's channel with its identities.
    public func reply(to request: WireMessage, _ content: JSON, on channel: KernelChannel) {
        let type = request.msgType.hasSuffix("_request")
            ? String(request.msgType.dropLast("_request".count)) + "_reply" : request.msgType + "_reply"
        send(type, content, to: request.identities, parent: request.header, on: channel)
    }

    public func send(_ msgType: String, _ content: JSON, to identities: [[UInt8]], parent: JSON, on channel: KernelChannel) {
        transport.send(WireMessage(identities: identities, header: headers.header(msgType: msgType),
                                   parentHeader: parent, content: content), on: channel)
    }

    /// busy, the handler, idle: every request gets this frame so clients can tell when its outputs are complete.
    public func whileBusy(_ request: WireMessage, _ body: () -> Void) {
        publishStatus("busy", parent: request.header)
        body()
        publishStatus("idle", parent: request.header)
    }
}
