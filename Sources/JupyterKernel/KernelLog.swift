import Glibc
import Synchronization

/// Kernel logging to standard error, which the Jupyter server shows in its own log. `NSAE_KERNEL_LOG` picks the
/// level: `debug`, `info` (default) or `warning`.
public enum KernelLog {
    enum Level: Int { case debug = 0, info, warning, error }

    static let configured: Level = {
        switch getenv("NSAE_KERNEL_LOG").map({ String(cString: $0) }) {
        case "debug": return .debug
        case "warning": return .warning
        case "error": return .error
        default: return .info
        }
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
            let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { break }
            offset += n
        }
    }
}
