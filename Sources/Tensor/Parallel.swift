import Dispatch
import Foundation
import Synchronization

/// The one parallel-for: work split over the cores that OpenBLAS would otherwise use (the machine's cores are
/// shared with OpenBLAS, which is idle in between the calls that split work this way).
public enum Parallel {
    public static var workers: Int { max(1, min(BLAS.threads, ProcessInfo.processInfo.activeProcessorCount)) }

    /// Workers worth waking for `work` multiply-adds: below ~1M a dispatch costs more than it saves.
    public static func workers(forWork work: Int) -> Int { work < (1 << 20) ? 1 : workers }

    /// Calls `body(part)` for part in 0..<parts, concurrently when parts > 1.
    /// The callers split their work into disjoint rows or features, which is why handing the non-Sendable
    /// closure to Dispatch through `UncheckedBox` is sound here.
    public static func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 { body(0); return }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedBox(escapable)
            DispatchQueue.concurrentPerform(iterations: parts) { box.value($0) }
        }
    }

    /// The `part`-th of `parts` near-equal contiguous slices of 0..<count (empty when there are more parts than
    /// items, never an inverted range).
    public static func slice(_ count: Int, part: Int, of parts: Int) -> Range<Int> {
        (count * part / parts)..<(count * (part + 1) / parts)
    }

    private struct BLASState { var users = 0; var savedThreads = 1 }
    private static let blasState = Mutex(BLASState())

    /// Runs `body(worker, workers)` on as many workers as OpenBLAS had threads, with OpenBLAS single-threaded while
    /// they run. For the forward pass's small-grained work (attention heads, GELU rows, loss rows): pieces too small
    /// for OpenBLAS's own threading to pay off (every small sgemm call would wake and join its pool), so each worker
    /// calls it on its own block. The switch is reference-counted so concurrent callers restore the setting correctly.
    public static func runOnBLASCores(_ body: @Sendable (_ worker: Int, _ workers: Int) -> Void) {
        let workers = blasState.withLock { s -> Int in
            if s.users == 0 { s.savedThreads = BLAS.threads; BLAS.setThreads(1) }
            s.users += 1
            return s.savedThreads
        }
        defer {
            blasState.withLock { s in
                s.users -= 1
                if s.users == 0 { BLAS.setThreads(s.savedThreads) }
            }
        }
        if workers <= 1 { body(0, 1); return }
        DispatchQueue.concurrentPerform(iterations: workers) { body($0, workers) }
    }
}

/// Carries a value into a @Sendable closure when the caller guarantees the accesses do not race.
public struct UncheckedBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// A raw pointer handed to parallel workers that write disjoint parts of one buffer.
public struct SharedPointer<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}
