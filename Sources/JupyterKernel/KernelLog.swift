import Glibc
import Synchronization

/// Kernel logging to standard error, which the Jupyter server shows in its own log, or to the file named by
/// `NSAE_KERNEL_LOG_FILE` (appended). `NSAE_KERNEL_LOG` picks the level: `debug`, `info`, `warning` (default) or
/// `error`. Warning by default because a kernel's stderr is the terminal of a client that started it: `jupyter
/// console` would print "kernel ready", "interrupt" and "shutting down" among the user's output.
public enum KernelLog {
    enum Level: Int { case debug = 0, info, warning, error }

    static let configured: Level = {
        switch getenv("NSAE_KERNEL_LOG").map({ String(cString: $0) }) {
        case "debug": return .debug
        case "info": return .info
        case "error": return .error
        default: return .warning
        }
    }()

    /// Standard error, or the log file (opened once, appending); stderr when the file cannot be opened.
    static let destination: Int32 = {
        guard let path = getenv("NSAE_KERNEL_LOG_FILE").map({ String(cString: $0) }), !path.isEmpty else { return 2 }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        return fd >= 0 ? fd : 2
    }()

    private static let override = Atomic<Int>(-1)
    static var threshold: Level { Level(rawValue: override.load(ordering: .relaxed)) ?? configured }

    /// Logs only from `level` up until `body` returns (tests that send thousands of bad messages on purpose).
    static func quieted<T>(to level: Level, _ body: () throws -> T) rethrows -> T {
        override.store(level.rawValue, ordering: .relaxed)
        defer { override.store(-1, ordering: .relaxed) }
        return try body()
    }

    public static func debug(_ message: @autoclosure () -> String) { log(.debug, message) }
    public static func info(_ message: @autoclosure () -> String) { log(.info, message) }
    public static func warning(_ message: @autoclosure () -> String) { log(.warning, message) }
    public static func error(_ message: @autoclosure () -> String) { log(.error, message) }

    private static func log(_ level: Level, _ message: () -> String) {
        guard level.rawValue >= threshold.rawValue else { return }
        let line = "[nsae kernel \(HeaderFactory.isoDate()) \(level)] \(message())\n"
        // write(2) directly: unbuffered, thread-safe per call, and no shared C `stderr` global to reason about.
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(destination, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { break }
            offset += n
        }
    }
}
