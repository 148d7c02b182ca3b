import Dispatch
import Synchronization
import Tensor

/// Splitting the forward pass's small-grained work (attention heads, GELU rows) over the cores that OpenBLAS would
/// otherwise use. Those pieces are too small for OpenBLAS's own threading to pay off (every small sgemm call would
/// wake and join its pool), so while they run, OpenBLAS is switched to one thread and each worker calls it on its
/// own block. The switch is reference-counted so concurrent forwards restore the caller's setting correctly.
enum Parallel {
    private struct State { var users = 0; var savedThreads = 1 }
    private static let state = Mutex(State())

    /// Runs `body(worker, workers)` on as many workers as OpenBLAS had threads, with OpenBLAS single-threaded.
    static func run(_ body: @Sendable (_ worker: Int, _ workers: Int) -> Void) {
        let workers = state.withLock { s -> Int in
            if s.users == 0 { s.savedThreads = BLAS.threads; BLAS.setThreads(1) }
            s.users += 1
            return s.savedThreads
        }
        defer {
            state.withLock { s in
                s.users -= 1
                if s.users == 0 { BLAS.setThreads(s.savedThreads) }
            }
        }
        if workers <= 1 { body(0, 1); return }
        DispatchQueue.concurrentPerform(iterations: workers) { body($0, workers) }
    }
}

/// A raw pointer handed to parallel workers that write disjoint parts of one buffer.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}
