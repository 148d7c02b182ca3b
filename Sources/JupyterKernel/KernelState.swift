import Synchronization
import Tensor

/// State shared by the shell loop, the control thread, the signal watcher and the heartbeat thread: the
/// cancellation flag of the command running now, and whether the kernel is shutting down.
public final class KernelState: Sendable {
    private let running = Mutex<CancellationFlag?>(nil)
    private let stopping = Atomic<Bool>(false)
    private let restartRequested = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    public init() {}

    func beginExecution(_ flag: CancellationFlag) { running.withLock { $0 = flag } }
    func endExecution() { running.withLock { $0 = nil } }

    /// Cancels the running command, if any. An interrupt while idle does nothing (as in ipykernel).
    /// Returns whether a command was running.
    @discardableResult
    public func interrupt(source: String) -> Bool {
        let flag = running.withLock { $0 }
        if let flag {
            KernelLog.info("interrupt (\(source)): cancelling the running command")
            flag.cancel()
            return true
        }
        KernelLog.debug("interrupt (\(source)) while idle: nothing to cancel")
        return false
    }

    public var isStopping: Bool { stopping.load(ordering: .acquiring) }
    public var restartWasRequested: Bool { restartRequested.load(ordering: .acquiring) }

    /// The server has closed its sockets; watchdogs stand down.
    public var hasFinished: Bool { finished.load(ordering: .acquiring) }
    func markFinished() { finished.store(true, ordering: .releasing) }

    /// Asks every loop to finish; a running command is cancelled so the shell loop can return.
    public func requestStop(restart: Bool = false) {
        if restart { restartRequested.store(true, ordering: .releasing) }
        stopping.store(true, ordering: .releasing)
        running.withLock { $0 }?.cancel()
    }
}
