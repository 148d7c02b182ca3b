import Foundation

/// Element-wise and row-wise kernels over Float32 buffers. Each works in place or into caller-provided output;
/// the loops are plain and branch-light so the optimizer vectorizes them.
public enum Kernels {
    // MARK: element-wise, in place on a buffer

    /// y += alpha · x
    @inlinable public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { y[i] += alpha * x[i] }
    }
    @inlinable public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { out[i] = a[i] + b[i] }
    }
    @inlinable public static func sub(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { out[i] = a[i] - b[i] }
    }
    @inlinable public static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { out[i] = a[i] * b[i] }
    }
    @inlinable public static func scale(_ x: UnsafeMutablePointer<Float>, _ s: Float, count n: Int) {
        for i in 0..<n { x[i] *= s }
    }
    @inlinable public static func relu(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { x[i] = max(x[i], 0) }
    }

    /// tanh, exact at the extremes (saturates to ±1, no NaN for large |x|).
    @inlinable public static func tanh(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { x[i] = Foundation.tanhf(x[i]) }
    }

    @inlinable public static func exp(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { x[i] = Foundation.expf(x[i]) }
    }

    /// GELU, tanh approximation (GPT-2's `gelu_new`): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    @inlinable public static func gelu(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        let c: Float = 0.797_884_56 // sqrt(2/pi)
        for i in 0..<n {
            let v = x[i]
            x[i] = 0.5 * v * (1 + Foundation.tanhf(c * (v + 0.044715 * v * v * v)))
        }
    }

    @inlinable public static func sum(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s += x[i] }
        return s
    }

    /// Sum in double precision, for statistics over many values.
    @inlinable public static func sumDouble(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        var s: Double = 0
        for i in 0..<n { s += Double(x[i]) }
        return s
    }

    @inlinable public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s += a[i] * b[i] }
        return s
    }

    @inlinable public static func l2norm(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        dot(x, x, count: n).squareRoot()
    }

    @inlinable public static func l1norm(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s += abs(x[i]) }
        return s
    }

    // MARK: row-wise on a [rows, cols] buffer

    /// Adds `bias` (cols values) to every row.
    @inlinable public static func addRowVector(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, _ bias: UnsafePointer<Float>) {
        for r in 0..<rows { let p = x + r * cols; for c in 0..<cols { p[c] += bias[c] } }
    }

    /// Column sums: out[c] = Σ_r x[r, c] (out has cols values; overwritten, or accumulated when `accumulate`).
    @inlinable public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        if !accumulate { for c in 0..<cols { out[c] = 0 } }
        for r in 0..<rows { let p = x + r * cols; for c in 0..<cols { out[c] += p[c] } }
    }

    public static func rowL2Norms(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { out[r] = l2norm(x + r * cols, count: cols) }
    }

    public static func rowL1Norms(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { out[r] = l1norm(x + r * cols, count: cols) }
    }

    /// Numerically stable softmax of each row, in place (max subtracted first).
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let p = x + r * cols
            var m = -Float.infinity
            for c in 0..<cols { m = max(m, p[c]) }
            var s: Float = 0
            for c in 0..<cols { let e = Foundation.expf(p[c] - m); p[c] = e; s += e }
            let inv = 1 / s
            for c in 0..<cols { p[c] *= inv }
        }
    }

    /// Numerically stable log-softmax of each row, in place: x − max − log Σ exp(x − max).
    public static func logSoftmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let p = x + r * cols
            let lse = logSumExp(p, count: cols)
            for c in 0..<cols { p[c] -= lse }
        }
    }

    /// log Σ exp(x), stable for large and small inputs.
    public static func logSumExp(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var m = -Float.infinity
        for c in 0..<n { m = max(m, x[c]) }
        if m == -Float.infinity { return m }
        var s: Float = 0
        for c in 0..<n { s += Foundation.expf(x[c] - m) }
        return m + Foundation.logf(s)
    }

    /// Layer norm of each row into `out` (may alias `x`): (x − mean)/sqrt(var + eps)·gamma + beta, biased variance.
    public static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int, gamma: UnsafePointer<Float>,
                                 beta: UnsafePointer<Float>, eps: Float = 1e-5, into out: UnsafeMutablePointer<Float>) {
        let invN = 1 / Float(cols)
        for r in 0..<rows {
            let p = x + r * cols
            let o = out + r * cols
            var mean: Float = 0
            for c in 0..<cols { mean += p[c] }
            mean *= invN
            var v: Float = 0
            for c in 0..<cols { let d = p[c] - mean; v += d * d }
            v *= invN
            let inv = 1 / (v + eps).squareRoot()
            for c in 0..<cols { o[c] = (p[c] - mean) * inv * gamma[c] + beta[c] }
        }
    }

    /// Index of the largest value (first on ties); -1 for an empty buffer.
    public static func argmax(_ x: UnsafePointer<Float>, count n: Int) -> Int {
        guard n > 0 else { return -1 }
        var best = 0
        for i in 1..<n where x[i] > x[best] { best = i }
        return best
    }

    /// Indices of the k largest values, largest first (ties by lower index). O(n log k).
    public static func topK(_ x: UnsafePointer<Float>, count n: Int, k: Int) -> [Int] {
        let k = min(k, n)
        guard k > 0 else { return [] }
        var heap = TopKHeap(capacity: k)
        for i in 0..<n { heap.offer(value: x[i], index: i) }
        return heap.sortedDescending().map(\.index)
    }
}

/// The order a `MinHeap` keeps: `heapBelow(a, b)` when a comes out before b.
public protocol HeapOrdered {
    static func heapBelow(_ a: Self, _ b: Self) -> Bool
}

/// A binary min-heap in an array: the one heap behind every streaming top-k and the tokenizer's merge queue.
public struct MinHeap<Element: HeapOrdered> {
    @usableFromInline var storage: [Element] = []
    public var items: [Element] { storage }

    public init(reservingCapacity n: Int = 0) { storage.reserveCapacity(n) }

    public var count: Int { storage.count }
    public var first: Element? { storage.first }

    @inlinable public mutating func push(_ e: Element) {
        storage.append(e)
        var i = storage.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard Element.heapBelow(storage[i], storage[p]) else { break }
            storage.swapAt(i, p)
            i = p
        }
    }

    @inlinable public mutating func pop() -> Element? {
        guard let top = storage.first else { return nil }
        let last = storage.removeLast()
        if !storage.isEmpty { storage[0] = last; siftDown(0) }
        return top
    }

    /// Replaces the smallest element (the heap must not be empty).
    @inlinable public mutating func replaceFirst(with e: Element) {
        storage[0] = e
        siftDown(0)
    }

    @inlinable mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < storage.count && Element.heapBelow(storage[l], storage[m]) { m = l }
            if r < storage.count && Element.heapBelow(storage[r], storage[m]) { m = r }
            if m == i { break }
            storage.swapAt(i, m)
            i = m
        }
    }
}

extension MinHeap: Sendable where Element: Sendable {}

/// A bounded min-heap keeping the k largest (value, index) pairs seen; the basis of every streaming top-k.
public struct TopKHeap: Sendable {
    public struct Entry: Sendable, Equatable, HeapOrdered {
        public var value: Float; public var index: Int
        /// `a` ranks below `b`: smaller value, or equal value and larger index (so lower indices win ties).
        @inline(__always) public static func heapBelow(_ a: Entry, _ b: Entry) -> Bool {
            a.value < b.value || (a.value == b.value && a.index > b.index)
        }
    }
    public let capacity: Int
    private var heap: MinHeap<Entry>
    public var entries: [Entry] { heap.items }

    public init(capacity: Int) {
        self.capacity = capacity
        // Grown as entries arrive: a k from a command may be far larger than the items ever offered.
        heap = MinHeap(reservingCapacity: min(capacity, 1024))
    }

    /// The smallest value kept, or -inf while not full: anything not above this cannot enter.
    public var threshold: Float { heap.count < capacity ? -.infinity : heap.first!.value }

    public mutating func offer(value: Float, index: Int) {
        guard capacity > 0, !value.isNaN else { return }
        let e = Entry(value: value, index: index)
        if heap.count < capacity { heap.push(e) }
        else if Entry.heapBelow(heap.first!, e) { heap.replaceFirst(with: e) }
    }

    public func sortedDescending() -> [Entry] { heap.items.sorted { Entry.heapBelow($1, $0) } }
}
