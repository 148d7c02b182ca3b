import Foundation
import Tensor

/// One (activation, token) pair found by a scan; `token` is the global row index in the store.
public struct FeatureHit: Sendable, Equatable {
    public var activation: Float
    public var token: Int
    /// The pre-activation the top hits were ranked by, for codes that saturate (NSAE); nil otherwise.
    public var preActivation: Float? = nil
}

/// What one streaming pass learned about one feature.
public struct FeatureActivationSummary: Sendable {
    public var feature: Int
    /// Largest activations, descending (ties: lower token index first); with a ranking encoder, largest
    /// pre-activations (each hit then carries both).
    public var top: [FeatureHit]
    /// Smallest positive activations, ascending: the weakest firings, for contrast.
    public var bottom: [FeatureHit]
    /// A uniform sample of the positions where the feature fires (reservoir sampling), in token order.
    public var random: [FeatureHit]
    /// Tokens scanned and tokens where the activation was > 0.
    public var tokensScanned: Int
    public var activeCount: Int
    /// Mean activation over the positions where it fired (0 if it never fired).
    public var meanActive: Double
    /// Counts of positive activations on the fixed bins of `FeatureActivationSummary.histogramEdges`.
    public var histogram: [Int]

    public var density: Double { tokensScanned > 0 ? Double(activeCount) / Double(tokensScanned) : 0 }

    /// Activation histogram bins: 10^(-4 + i/5), i = 0…40 (1e-4 … 1e4); out-of-range values go to the end bins.
    public static let histogramBins = 40
    public static var histogramEdges: [Double] { (0...histogramBins).map { pow(10, -4 + Double($0) / 5) } }
    static func bin(_ v: Float) -> Int {
        let p = (log10(Double(v)) + 4) * 5
        return min(histogramBins - 1, max(0, p.isFinite ? Int(p.rounded(.down)) : 0))
    }
}

/// Top-activating tokens for one, some or all features of a layer in one streaming pass over a store; memory is
/// O(features × k) plus one chunk of activations and codes.
public enum TopActivations {
    public struct Options: Sendable {
        public var k = 20
        public var bottomK = 10
        public var randomK = 10
        public var chunkRows = 1024
        public var includeBOS = false
        public var seed: UInt64 = 0
        /// Stop after this many tokens (nil: the whole store).
        public var maxTokens: Int? = nil
        public init() {}
    }

    /// Scans hook `hook` of `store`, encoding each chunk with `encode` ([rows, d] → [rows, m] codes), and
    /// summarizes `features` (nil: all m). With `rankBy` ([rows, d] → [rows, m] keys, e.g. NSAE's pre-activations,
    /// whose tanh codes tie at 1.0), the top hits are the active positions with the largest keys; everything else
    /// (bottom, sample, histogram, means) still reads the codes.
    public static func scan(store: ActivationStore, hook: Int, features selected: [Int]? = nil,
                            options: Options = Options(), context: WorkContext = .silent,
                            rankBy: ((Matrix) throws -> Matrix)? = nil,
                            encode: (Matrix) throws -> Matrix) throws -> [FeatureActivationSummary] {
        guard store.hooks.indices.contains(hook) else {
            throw ActivationsError("top-k: hook index \(hook) outside 0..<\(store.layerCount)")
        }
        guard options.k >= 1 else { throw ActivationsError("top-k: k must be at least 1, got \(options.k)") }
        let total = min(store.tokenCount, options.maxTokens ?? store.tokenCount)
        var state: ScanState? = nil
        var start = 0
        while start < total {
            try context.checkCancelled()
            let range = start..<min(total, start + max(1, options.chunkRows))
            let x = try store.matrix(hook: hook, rows: range)
            let bos = try store.bosMask(range)
            let codes = try encode(x)
            guard codes.rows == range.count else {
                throw ActivationsError("top-k: encoder returned \(codes.rows) rows for \(range.count) inputs")
            }
            if state == nil {
                let features = selected ?? Array(0..<codes.cols)
                guard features.allSatisfy({ $0 >= 0 && $0 < codes.cols }) else {
                    throw ActivationsError("top-k: features \(features.filter { $0 < 0 || $0 >= codes.cols }) outside 0..<\(codes.cols)")
                }
                state = ScanState(features: features, width: codes.cols, options: options)
            }
            guard codes.cols == state!.width else {
                throw ActivationsError("top-k: encoder width changed from \(state!.width) to \(codes.cols)")
            }
            let keys = try rankBy?(x)
            if let keys, keys.rows != codes.rows || keys.cols != codes.cols {
                throw ActivationsError("top-k: the ranking encoder returned \(keys.rows)x\(keys.cols) for codes \(codes.rows)x\(codes.cols)")
            }
            state!.add(codes: codes, keys: keys, firstToken: range.lowerBound, skip: options.includeBOS ? nil : bos)
            start = range.upperBound
            context.report(ProgressUpdate(task: "top-k", done: start, total: total, unit: "tokens"))
        }
        guard let state else { return [] }
        return state.summaries()
    }
}

/// Per-feature accumulators of one scan.
private struct ScanState {
    let features: [Int]
    let width: Int
    let options: TopActivations.Options
    var top: [RankedHeap]
    var bottom: [TopKHeap]          // keyed by −activation, so the heap keeps the smallest positive ones
    var reservoirs: [[FeatureHit]]
    var activeCount: [Int]
    var activeSum: [Double]
    var histograms: [[Int32]]
    var tokensScanned = 0
    var rng: RNG
    /// features[i] for each code column, or -1 when that column is not tracked.
    var slot: [Int]

    init(features: [Int], width: Int, options: TopActivations.Options) {
        self.features = features
        self.width = width
        self.options = options
        top = features.map { _ in RankedHeap(capacity: options.k) }
        bottom = features.map { _ in TopKHeap(capacity: options.bottomK) }
        reservoirs = features.map { _ in [] }
        activeCount = Array(repeating: 0, count: features.count)
        activeSum = Array(repeating: 0, count: features.count)
        histograms = features.map { _ in Array(repeating: 0, count: FeatureActivationSummary.histogramBins) }
        rng = RNG(seed: options.seed)
        slot = Array(repeating: -1, count: width)
        for (i, f) in features.enumerated() { slot[f] = i }
    }

    mutating func add(codes: Matrix, keys: Matrix?, firstToken: Int, skip: [Bool]?) {
        let all = features.count == width
        let ranked = keys != nil
        let keyData = keys?.data ?? []
        codes.data.withUnsafeBufferPointer { p in
            keyData.withUnsafeBufferPointer { k in
                for r in 0..<codes.rows {
                    if let skip, skip[r] { continue }
                    tokensScanned += 1
                    let token = firstToken + r
                    let row = p.baseAddress! + r * width
                    let keyRow = ranked ? k.baseAddress! + r * width : row
                    if all {
                        for j in 0..<width where row[j] > 0 { record(slot: j, value: row[j], key: keyRow[j], token: token) }
                    } else {
                        for (i, f) in features.enumerated() where row[f] > 0 { record(slot: i, value: row[f], key: keyRow[f], token: token) }
                    }
                }
            }
        }
        hasKeys = hasKeys || ranked
    }
    var hasKeys = false

    @inline(__always) mutating func record(slot i: Int, value v: Float, key: Float, token: Int) {
        activeCount[i] += 1
        activeSum[i] += Double(v)
        histograms[i][FeatureActivationSummary.bin(v)] += 1
        if key > top[i].threshold { top[i].offer(key: key, activation: v, token: token) }
        if -v > bottom[i].threshold { bottom[i].offer(value: -v, index: token) }
        if options.randomK > 0 {
            if reservoirs[i].count < options.randomK {
                reservoirs[i].append(FeatureHit(activation: v, token: token))
            } else {
                let j = rng.int(below: activeCount[i])
                if j < options.randomK { reservoirs[i][j] = FeatureHit(activation: v, token: token) }
            }
        }
    }

    func summaries() -> [FeatureActivationSummary] {
        features.indices.map { i in
            FeatureActivationSummary(
                feature: features[i],
                top: top[i].sortedDescending().map { FeatureHit(activation: $0.activation, token: $0.token, preActivation: hasKeys ? $0.key : nil) },
                bottom: bottom[i].sortedDescending().map { FeatureHit(activation: -$0.value, token: $0.index) },
                random: reservoirs[i].sorted { $0.token < $1.token },
                tokensScanned: tokensScanned, activeCount: activeCount[i],
                meanActive: activeCount[i] > 0 ? activeSum[i] / Double(activeCount[i]) : 0,
                histogram: histograms[i].map { Int($0) })
        }
    }
}

/// The k largest (key, token) pairs seen, with each one's activation: TopKHeap's order (ties: lower token first),
/// carrying the activation when the key is another number (NSAE's pre-activation).
struct RankedHeap {
    struct Entry: HeapOrdered {
        var key: Float, activation: Float, token: Int
        @inline(__always) static func heapBelow(_ a: Entry, _ b: Entry) -> Bool {
            a.key < b.key || (a.key == b.key && a.token > b.token)
        }
    }
    let capacity: Int
    private var heap: MinHeap<Entry>

    init(capacity: Int) {
        self.capacity = capacity
        heap = MinHeap(reservingCapacity: min(capacity, 1024))
    }

    var threshold: Float { heap.count < capacity ? -.infinity : heap.first!.key }

    mutating func offer(key: Float, activation: Float, token: Int) {
        guard capacity > 0, !key.isNaN else { return }
        let e = Entry(key: key, activation: activation, token: token)
        if heap.count < capacity { heap.push(e) }
        else if Entry.heapBelow(heap.first!, e) { heap.replaceFirst(with: e) }
    }

    func sortedDescending() -> [Entry] { heap.items.sorted { Entry.heapBelow($1, $0) } }
}

/// A hit shown in its context window: tokens before and after, rebuilt from the stored ids.
public struct ContextExample: Sendable {
    public var hit: FeatureHit
    /// Token strings (or ids as text when no tokenizer was given), the hit's token at `focus`.
    public var tokens: [String]
    public var tokenIds: [Int32]
    public var focus: Int
}

extension ActivationStore {
    /// The hit's context: up to `before` tokens before and `after` after, never crossing its context window
    /// (a window is `contextLength` consecutive rows, as harvests write them).
    public func context(of hit: FeatureHit, before: Int = 8, after: Int = 4,
                        tokenString: ((Int32) -> String)? = nil) throws -> ContextExample {
        guard hit.token >= 0 && hit.token < tokenCount else {
            throw ActivationsError("store \(folder): token index \(hit.token) outside 0..<\(tokenCount)")
        }
        let window = contextLength > 0 ? contextLength : tokenCount
        let windowStart = hit.token / window * window
        let windowEnd = min(tokenCount, windowStart + window)
        let lo = max(windowStart, hit.token - max(0, before))
        let hi = min(windowEnd, hit.token + max(0, after) + 1)
        let ids = try tokenIds(lo..<hi)
        return ContextExample(hit: hit, tokens: ids.map { tokenString?($0) ?? String($0) }, tokenIds: ids,
                              focus: hit.token - lo)
    }
}
