import CZMQ
import Foundation
import Glibc
import Synchronization
import Workbench

/// The ZeroMQ side of the kernel: binds the five sockets of a connection file and runs the loops.
/// - shell: the calling thread (commands run here, one at a time);
/// - control: its own thread, so interrupt and shutdown are served while a command runs;
/// - heartbeat: its own thread echoing pings, and watching for the death of the parent process;
/// - signals: a watcher turning SIGINT into a cancellation of the running command.
/// Call `InterruptSignals.blockInCurrentThread()` before creating anything that starts threads.
public final class KernelServer {
    /// The default limit on one received message (all its frames), 64 MiB: far above any request a front end
    /// sends (code, completions, input), far below what would hurt the machine. Larger frames make libzmq drop
    /// the sender's connection before it buffers them (ZMQ_MAXMSGSIZE); larger multipart sums are dropped unread.
    public static let defaultMaxMessageBytes = 64 << 20
    /// What kernel_info's banner and the log say when the connection file has no key.
    public static let unsignedWarning = "WARNING: the connection file has no key, so messages are not signed: "
        + "any local process that can reach the kernel's ports can run commands in it."

    let connection: ConnectionInfo
    let context: ZMQContext
    let transport: ZMQTransport
    let heartbeat: ZMQSocket
    let state = KernelState()
    let core: KernelCore
    let control: ControlHandler

    /// The endpoints actually bound, by channel name (a port 0 in the connection file binds a free port).
    public let boundEndpoints: [String: String]

    public init(connection: ConnectionInfo, interpreter: any Interpreter, implementationVersion: String = "0.1.0",
                maxMessageBytes: Int = KernelServer.defaultMaxMessageBytes) throws {
        guard maxMessageBytes > 0 else { throw KernelSetupError("the message size limit must be positive") }
        self.connection = connection
        let context = ZMQContext()
        self.context = context
        var endpoints: [String: String] = [:]
        let open = { (type: Int32, port: Int, name: String) throws -> ZMQSocket in
            let socket = try Self.openSocket(context, type, connection, port, name, maxMessageBytes: maxMessageBytes)
            endpoints[name] = socket.lastEndpoint()
            return socket
        }
        let iopub = try open(ZMQ_XPUB, connection.iopubPort, "iopub")
        // A slow subscriber must not silently lose outputs at the default high-water mark of 1000.
        try iopub.setOption(ZMQ_SNDHWM, Int32(100_000))
        transport = ZMQTransport(shell: try open(ZMQ_ROUTER, connection.shellPort, "shell"),
                                 control: try open(ZMQ_ROUTER, connection.controlPort, "control"),
                                 stdin: try open(ZMQ_ROUTER, connection.stdinPort, "stdin"),
                                 iopub: iopub, signer: MessageSigner(key: connection.key),
                                 maxMessageBytes: maxMessageBytes)
        heartbeat = try open(ZMQ_REP, connection.hbPort, "heartbeat")
        boundEndpoints = endpoints
        let unsigned = connection.key.isEmpty
        if unsigned { KernelLog.warning(Self.unsignedWarning) }
        let messenger = KernelMessenger(transport: transport, headers: HeaderFactory())
        core = KernelCore(interpreter: interpreter, messenger: messenger, state: state,
                          implementationVersion: implementationVersion, notice: unsigned ? Self.unsignedWarning : nil)
        control = ControlHandler(messenger: messenger, state: state, kernelInfo: core.kernelInfo)
    }

    static func openSocket(_ context: ZMQContext, _ type: Int32, _ connection: ConnectionInfo, _ port: Int,
                           _ name: String, maxMessageBytes: Int) throws -> ZMQSocket {
        let endpoint = connection.endpoint(port: port)
        do {
            let socket = try ZMQSocket(context: context, type: type)
            try socket.setOption(ZMQ_MAXMSGSIZE, Int64(maxMessageBytes))
            // A client that reconnects with the same identity takes over its routing entry.
            if type == ZMQ_ROUTER { try socket.setOption(ZMQ_ROUTER_HANDOVER, Int32(1)) }
            try socket.bind(endpoint)
            return socket
        } catch {
            throw KernelSetupError("cannot open the \(name) socket on \(endpoint): \(error)")
        }
    }

    /// Serves until a shutdown_request (or the parent's death). Returns after the sockets are flushed and closed.
    public func run() {
        let state = self.state
        let messenger = core.messenger
        messenger.publishStatus("starting", parent: [:])
        KernelLog.info("kernel ready: shell \(boundEndpoints["shell"] ?? "?"), pid \(getpid()), messages up to "
                       + "\(transport.maxMessageBytes) bytes\(transport.signer.isEnabled ? "" : ", UNSIGNED")")

        let finished = DispatchGroup()
        // Also when the caller did not block SIGINT: then the handler, not the default action, receives it.
        InterruptSignals.installFlagHandler()
        InterruptSignals.startWatcher(shouldStop: { state.isStopping },
                                      onInterrupt: { state.interrupt(source: "SIGINT") })
        startHeartbeat(finished: finished)
        startControl(finished: finished)

        while !state.isStopping {
            guard let frames = transport.receive(on: .shell, timeoutMs: 100) else { continue }
            guard let message = transport.decode(frames, channel: .shell) else { continue }
            core.handleShell(message)
        }

        KernelLog.info("shutting down")
        if finished.wait(timeout: .now() + 3) == .timedOut {
            KernelLog.warning("control or heartbeat thread did not stop in time")
        }
        transport.closeAll()
        context.terminate()
        state.markFinished()
        KernelLog.info("stopped")
    }

    private func startHeartbeat(finished: DispatchGroup) {
        let handoff = SocketHandoff(socket: heartbeat)
        let state = self.state
        let parentWatch = ParentWatch()
        finished.enter()
        let thread = Thread {
            defer { finished.leave() }
            let socket = handoff.socket
            while !state.isStopping {
                if socket.waitReadable(timeoutMs: 200) {
                    // Echo the ping unchanged; it is not a Jupyter message.
                    if let frames = try? socket.receiveMultipart(dontWait: true) { try? socket.sendMultipart(frames) }
                }
                if let reason = parentWatch.parentGone() {
                    // The usual end when a client quits without waiting for its shutdown_reply (jupyter console
                    // does): not a problem to show on the terminal the kernel shares with it.
                    KernelLog.info("\(reason): shutting down")
                    state.requestStop()
                    ParentWatch.exitIfStillRunning(after: 5, state: state)
                }
            }
            socket.close()
        }
        thread.name = "nsae-kernel-heartbeat"
        thread.start()
    }

    private func startControl(finished: DispatchGroup) {
        let transport = self.transport
        let state = self.state
        let control = self.control
        finished.enter()
        let thread = Thread {
            defer { finished.leave() }
            while !state.isStopping {
                guard let frames = transport.receive(on: .control, timeoutMs: 100) else { continue }
                guard let message = transport.decode(frames, channel: .control) else { continue }
                control.handle(message)
                if state.isStopping {
                    // A command that ignores cancellation must not keep a shut-down kernel alive.
                    ParentWatch.exitIfStillRunning(after: 3, state: state)
                }
            }
        }
        thread.name = "nsae-kernel-control"
        thread.start()
    }
}

/// Detects that the process that started the kernel is gone (Jupyter sets JPY_PARENT_PID; otherwise the parent
/// at start-up), so an orphaned kernel does not run forever.
struct ParentWatch: Sendable {
    let originalParent = getppid()
    let declaredParent: pid_t? = getenv("JPY_PARENT_PID").flatMap { pid_t(String(cString: $0)) }

    func parentGone() -> String? {
        if getppid() != originalParent { return "parent process \(originalParent) exited" }
        if let declared = declaredParent, declared > 1, kill(declared, 0) != 0 && errno == ESRCH {
            return "JPY_PARENT_PID \(declared) no longer exists"
        }
        return nil
    }

    /// Last resort after a stop request: exit the process if it has not finished within `seconds`.
    static func exitIfStillRunning(after seconds: Double, state: KernelState) {
        let thread = Thread {
            Thread.sleep(forTimeInterval: seconds)
            guard !state.hasFinished else { return }
            KernelLog.warning("the running command did not stop within \(seconds) s; exiting")
            _exit(0)
        }
        thread.start()
    }
}
