#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensor

// SIGINT → the shared cancellation flag that engines check. The C handler only performs an atomic store
// (CancellationFlag wraps an Atomic<Bool>), which is async-signal-safe; everything else happens on normal threads.

/// The flag Ctrl-C sets in a terminal front end (REPL, `nsae run`).
public let terminalInterruptFlag = CancellationFlag()

public enum InterruptHandling {
    /// Installs the SIGINT handler. Without SA_RESTART, so a blocking `select`/`read` returns EINTR and the
    /// REPL can react to Ctrl-C at the prompt.
    public static func install() {
        _ = terminalInterruptFlag.isCancelled  // initialize the global before a signal can reach the handler
        var action = sigaction()
        #if canImport(Glibc)
        action.__sigaction_handler.sa_handler = { _ in terminalInterruptFlag.cancel() }
        #else
        action.__sigaction_u.__sa_handler = { _ in terminalInterruptFlag.cancel() }
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
    }
}
