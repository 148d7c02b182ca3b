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
    let connection: ConnectionInfo
    let context: ZMQContext
    let transport: ZMQTransport
    let heartbeat: ZMQSocket
    let state = KernelState()
    let core: KernelCore
    let control: ControlHandler

    public init(connection: ConnectionInfo, interpreter: any Interpreter,
                implementationVersion: String = "0.1.0") throws {
        self.connection = connection
        let context = ZMQContext()
        self.context = context
        let open = { (type: Int32, port: Int, name: String) throws -> ZMQSocket in
            try Self.openSocket(context, type, connection, port, name)
        }
        let iopub = try open(ZMQ_XPUB, connection.iopubPort, "iopub")
        // A slow subscriber must not silently lose outputs at the default high-water mark of 1000.
        try iopub.setOption(ZMQ_SNDHWM, Int32(100_000))
        transport = ZMQTransport(shell: try open(ZMQ_ROUTER, connection.shellPort, "shell"),
                                 control: try open(ZMQ_ROUTER, connection.controlPort, "control"),
                                 stdin: try open(ZMQ_ROUTER, connection.stdinPort, "stdin"),
                                 iopub: iopub, signer: MessageSigner(key: connection.key))
        heartbeat = try open(ZMQ_REP, connection.hbPort, "heartbeat")
        let messenger = KernelMessenger(transport: transport, headers: HeaderFactory())
        core = KernelCore(interpreter: interpreter, messenger: messenger, state: state,
                          implementationVersion: implementationVersion)
        control = ControlHandler(messenger: messenger, state: state, kernelInfo: core.kernelInfo)
    }

    static func openSocket(_ context: ZMQContext, _ type: Int32, _ connection: ConnectionInfo, _ port: Int,
                           _ name: String) throws -> ZMQSocket {
        let endpoint = connection.endpoint(port: port)
        do {
            let socket = try ZMQSocket(context: context, type: type)
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
        KernelLog.info("kernel ready: shell \(connection.endpoint(port: connection.shellPort)), pid \(getpid())")

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
                    KernelLog.warning("\(reason): shutting down")
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
