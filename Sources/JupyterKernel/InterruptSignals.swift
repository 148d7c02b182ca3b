import Foundation
import Glibc
import Synchronization

/// SIGINT handling. Jupyter interrupts with SIGINT to the kernel's whole process group, also when idle and right
/// before every shutdown, so the kernel must never die of it. Two layers:
/// - `blockInCurrentThread()` blocks SIGINT before the kernel starts its threads, which inherit the mask; a
///   watcher thread takes the signal with `sigtimedwait`, so zmq calls never see EINTR.
/// - A process-wide handler catches SIGINT delivered to threads that were started before the mask was set
///   (libraries' worker pools); it only raises a flag that the watcher picks up.
public enum InterruptSignals {
    /// Raised by the C signal handler; async-signal-safe because it is a lock-free atomic store.
    static let pending = Atomic<Bool>(false)

    public static func blockInCurrentThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        installFlagHandler()
    }

    static func installFlagHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in InterruptSignals.pending.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGINT, &action, nil)
    }

    /// Starts the watcher: every SIGINT calls `onInterrupt` (on the watcher thread) until `shouldStop` is true.
    static func startWatcher(shouldStop: @escaping @Sendable () -> Bool, onInterrupt: @escaping @Sendable () -> Void) {
        let thread = Thread {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGINT)
            var timeout = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            while !shouldStop() {
                let signal = sigtimedwait(&set, nil, &timeout)
                let flagged = pending.exchange(false, ordering: .relaxed)
                if signal == SIGINT || flagged { onInterrupt() }
            }
        }
        thread.name = "nsae-kernel-signals"
        thread.start()
    }
}
