import Synchronization

/// A cancellation flag shared between a front end (Ctrl-C in the REPL, interrupt in Jupyter) and the engines.
/// Long loops check `isCancelled` between steps and stop cleanly, keeping whatever state they had reached.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
    public func cancel() { flag.store(true, ordering: .relaxed) }
    public func reset() { flag.store(false, ordering: .relaxed) }

    /// Throws `Cancelled` when the flag is set.
    public func check() throws { if isCancelled { throw Cancelled() } }
}

/// Thrown by long work that stopped because its cancellation flag was set.
public struct Cancelled: Error, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "interrupted" }
}

/// One progress report of a long command: `done` of `total` units (`unit` says what they are), with a free message.
public struct ProgressUpdate: Sendable {
    public var task: String
    public var done: Int
    public var total: Int
    public var unit: String
    public var message: String

    public init(task: String, done: Int, total: Int, unit: String = "steps", message: String = "") {
        self.task = task; self.done = done; self.total = total; self.unit = unit; self.message = message
    }

    public var fraction: Double { total > 0 ? min(1, Double(done) / Double(total)) : 0 }
}

/// How engines report progress and learn they should stop. Each front end draws progress its own way
/// (a terminal bar, a Jupyter display updated in place, JSON-mode stderr).
public protocol ProgressSink: Sendable {
    func report(_ update: ProgressUpdate)
}

/// The context every long-running engine call takes: where to report, and the flag to honour.
public struct WorkContext: Sendable {
    public var progress: (any ProgressSink)?
    public var cancellation: CancellationFlag

    public init(progress: (any ProgressSink)? = nil, cancellation: CancellationFlag = CancellationFlag()) {
        self.progress = progress
        self.cancellation = cancellation
    }

    public func report(_ update: ProgressUpdate) { progress?.report(update) }
    public var isCancelled: Bool { cancellation.isCancelled }
    public func checkCancelled() throws { try cancellation.check() }

    /// A context that reports nowhere and is never cancelled.
    public static var silent: WorkContext { WorkContext() }
}
