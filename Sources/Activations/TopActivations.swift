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
        try scan(store: store, hook: hook, features: selected, options: options, context: context) { x, rows, consume in
            let input = Matrix(rows: rows, cols: store.hooks[hook].d, data: Array(UnsafeBufferPointer(start: x, count: rows * store.hooks[hook].d)))
            let codes = try encode(input)
            guard codes.rows == rows else {
                throw ActivationsError("top-k: encoder returned \(codes.rows) rows for \(rows) inputs")
            }
            let keys = try rankBy?(input)
            if let keys, keys.rows != codes.rows || keys.cols != codes.cols {
                throw ActivationsError("top-k: the ranking encoder returned \(keys.rows)x\(keys.cols) for codes \(codes.rows)x\(codes.cols)")
            }
            try codes.data.withUnsafeBufferPointer { c in
                try (keys?.data ?? []).withUnsafeBufferPointer { k in
                    try consume(EncodedChunk(codes: c.baseAddress!, keys: keys == nil ? nil : k.baseAddress!, columns: nil, width: codes.cols))
                }
            }
        }
    }

    /// One chunk's codes [rows, width] (and ranking keys of the same shape), valid while the consumer runs;
    /// `columns` gives the feature of each code column when the encoder computed only some features (nil: column j
    /// is feature j).
    struct EncodedChunk {
        var codes: UnsafePointer<Float>
        var keys: UnsafePointer<Float>?
        var columns: [Int]?
        var width: Int
    }

    /// The scan over the store: each chunk read into one buffer kept for the whole scan, encoded by `encode`
    /// (x [rows, d], rows, the consumer to hand the chunk's codes to), summarized.
    static func scan(store: ActivationStore, hook: Int, features selected: [Int]?, options: Options, context: WorkContext,
                     encode: (UnsafePointer<Float>, Int, (EncodedChunk) throws -> Void) throws -> Void) throws
        -> [FeatureActivationSummary] {
        guard store.hooks.indices.contains(hook) else {
            throw ActivationsError("top-k: hook index \(hook) outside 0..<\(store.layerCount)")
        }
        guard options.k >= 1 else { throw ActivationsError("top-k: k must be at least 1, got \(options.k)") }
        let total = min(store.tokenCount, options.maxTokens ?? store.tokenCount)
        let chunkRows = max(1, min(options.chunkRows, max(total, 1)))
        let d = store.hooks[hook].d
        var input = [Float](repeating: 0, count: chunkRows * d)
        var state: ScanState? = nil
        var start = 0
        while start < total {
            try context.checkCancelled()
            let range = start..<min(total, start + chunkRows)
            try input.withUnsafeMutableBufferPointer { try store.readRows(hook: hook, rows: range, into: $0.baseAddress!) }
            let bos = try store.bosMask(range)
            try input.withUnsafeBufferPointer { x in try encode(x.baseAddress!, range.count) { chunk in
                if state == nil {
                    let width = chunk.columns?.count ?? chunk.width
                    let all = chunk.columns ?? Array(0..<width)
                    let features = selected ?? all
                    let known = Set(all)
                    guard features.allSatisfy({ $0 >= 0 && known.contains($0) }) else {
                        throw ActivationsError("top-k: features \(features.filter { $0 < 0 || !known.contains($0) }) outside 0..<\(width)")
                    }
                    state = ScanState(features: features, columns: all, options: options)
                }
                guard chunk.width == state!.width else {
                    throw ActivationsError("top-k: encoder width changed from \(state!.width) to \(chunk.width)")
                }
                state!.add(codes: chunk.codes, keys: chunk.keys, rows: range.count, firstToken: range.lowerBound,
                           skip: options.includeBOS ? nil : bos)
            } }
            start = range.upperBound
            context.report(ProgressUpdate(task: "top-k", done: start, total: total, unit: "tokens"))
        }
        guard let state else { return [] }
        return state.summaries()
    }
}

/// Per-feature accumulators of one scan.
struct ScanState {
    let features: [Int]
    let width: Int
    let options: TopActivations.Options
    var top: [RankedHeap]
    var bottom: [TopKHeap]          // keyed by −activation, so the heap keeps the smallest positive ones
    var reservoirs: [[FeatureHit]]
    /// Counts, sums, histograms and the heaps' entry thresholds per slot, touched on every active entry.
    let tallies: FeatureTallies
    var tokensScanned = 0
    var rng: RNG
    /// Whether code column i is features[i] for every i (the all-features scan, or an encoder of just those).
    let identity: Bool
    /// Otherwise the tracked (column, slot) pairs.
    let tracked: [(column: Int, slot: Int)]
    var hasKeys = false

    /// `columns[c]` is the feature of code column c.
    init(features: [Int], columns: [Int], options: TopActivations.Options) {
        self.features = features
        self.width = columns.count
        self.options = options
        top = features.map { _ in RankedHeap(capacity: options.k) }
        bottom = features.map { _ in TopKHeap(capacity: options.bottomK) }
        reservoirs = features.map { _ in [] }
        tallies = FeatureTallies(slots: features.count)
        // A heap of capacity 0 has no threshold: +∞ offers it nothing.
        for i in features.indices {
            tallies.topThreshold[i] = top[i].threshold
            tallies.bottomThreshold[i] = options.bottomK > 0 ? bottom[i].threshold : .infinity
        }
        rng = RNG(seed: options.seed)
        identity = features == columns
        var columnOf: [Int: Int] = [:]
        for (c, f) in columns.enumerated() where columnOf[f] == nil { columnOf[f] = c }
        tracked = features.enumerated().map { (column: columnOf[$1]!, slot: $0) }
    }

    mutating func add(codes: UnsafePointer<Float>, keys: UnsafePointer<Float>?, rows: Int, firstToken: Int, skip: [Bool]?) {
        let ranked = keys != nil
        for r in 0..<rows {
            if let skip, skip[r] { continue }
            tokensScanned += 1
            let token = firstToken + r
            let row = codes + r * width
            let keyRow = keys.map { $0 + r * width } ?? row
            if identity {
                // Most codes are 0: test 16 at a time, record the positive ones in column order.
                var j = 0
                let raw = UnsafeRawPointer(row)
                while j + 16 <= width {
                    let v = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                    if any(v .> 0) {
                        for q in 0..<16 where v[q] > 0 { record(slot: j + q, value: v[q], key: keyRow[j + q], token: token) }
                    }
                    j += 16
                }
                while j < width {
                    if row[j] > 0 { record(slot: j, value: row[j], key: keyRow[j], token: token) }
                    j += 1
                }
            } else {
                for (c, i) in tracked where row[c] > 0 { record(slot: i, value: row[c], key: keyRow[c], token: token) }
            }
        }
        hasKeys = hasKeys || ranked
    }

    @inline(__always) mutating func record(slot i: Int, value v: Float, key: Float, token: Int) {
        let t = tallies
        t.activeCount[i] += 1
        t.activeSum[i] += Double(v)
        t.histograms[i * FeatureActivationSummary.histogramBins + HistogramBins.bin(v)] += 1
        if key > t.topThreshold[i] {
            top[i].offer(key: key, activation: v, token: token)
            t.topThreshold[i] = top[i].threshold
        }
        if -v > t.bottomThreshold[i] {
            bottom[i].offer(value: -v, index: token)
            t.bottomThreshold[i] = bottom[i].threshold
        }
        let randomK = options.randomK
        if randomK > 0 {
            if t.activeCount[i] <= randomK {
                reservoirs[i].append(FeatureHit(activation: v, token: token))
            } else {
                let j = rng.int(below: t.activeCount[i])
                if j < randomK { reservoirs[i][j] = FeatureHit(activation: v, token: token) }
            }
        }
    }

    func summaries() -> [FeatureActivationSummary] {
        let bins = FeatureActivationSummary.histogramBins
        let t = tallies
        return features.indices.map { i in
            FeatureActivationSummary(
                feature: features[i],
                top: top[i].sortedDescending().map { FeatureHit(activation: $0.activation, token: $0.token, preActivation: hasKeys ? $0.key : nil) },
                bottom: bottom[i].sortedDescending().map { FeatureHit(activation: -$0.value, token: $0.index) },
                random: reservoirs[i].sorted { $0.token < $1.token },
                tokensScanned: tokensScanned, activeCount: t.activeCount[i],
                meanActive: t.activeCount[i] > 0 ? t.activeSum[i] / Double(t.activeCount[i]) : 0,
                histogram: (0..<bins).map { Int(t.histograms[i * bins + $0]) })
        }
    }
}

/// The per-slot numbers a scan updates on every active entry, in plain buffers (no copy-on-write check or bounds
/// check per update; the heaps are touched only when an entry passes their cached threshold).
final class FeatureTallies {
    let activeCount: UnsafeMutablePointer<Int>
    let activeSum: UnsafeMutablePointer<Double>
    /// slots × histogramBins counts, slot-major.
    let histograms: UnsafeMutablePointer<Int32>
    let topThreshold: UnsafeMutablePointer<Float>
    let bottomThreshold: UnsafeMutablePointer<Float>
    private let slots: Int

    init(slots: Int) {
        self.slots = slots
        let n = max(slots, 1), bins = FeatureActivationSummary.histogramBins
        activeCount = .allocate(capacity: n); activeCount.initialize(repeating: 0, count: n)
        activeSum = .allocate(capacity: n); activeSum.initialize(repeating: 0, count: n)
        histograms = .allocate(capacity: n * bins); histograms.initialize(repeating: 0, count: n * bins)
        topThreshold = .allocate(capacity: n); topThreshold.initialize(repeating: -.infinity, count: n)
        bottomThreshold = .allocate(capacity: n); bottomThreshold.initialize(repeating: -.infinity, count: n)
    }
    deinit {
        activeCount.deallocate(); activeSum.deallocate(); histograms.deallocate()
        topThreshold.deallocate(); bottomThreshold.deallocate()
    }
}

/// `FeatureActivationSummary.bin` without a log10 per value: the smallest Float of each bin, found once by bisection
/// over the positive Floats' bit patterns (ordered as their values) with `bin` itself, so both give the same bin for
/// every Float (`bin` is monotone: log10 is).
enum HistogramBins {
    static let lowerEdges: [Float] = edges()
    /// The same edges in a buffer that lives for the whole process (read on every active entry).
    nonisolated(unsafe) static let edgeBuffer: UnsafePointer<Float> = {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: lowerEdges.count)
        p.initialize(from: lowerEdges, count: lowerEdges.count)
        return UnsafePointer(p)
    }()

    private static func edges() -> [Float] { (1..<FeatureActivationSummary.histogramBins).map { i in
        var lo: UInt32 = 1, hi = Float.greatestFiniteMagnitude.bitPattern   // bin(lo) < i ≤ bin(hi)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2
            if FeatureActivationSummary.bin(Float(bitPattern: mid)) >= i { hi = mid } else { lo = mid }
        }
        return Float(bitPattern: hi)
    } }

    /// The bin of a positive value v (as `FeatureActivationSummary.bin(v)`).
    @inline(__always) static func bin(_ v: Float) -> Int {
        guard v.isFinite else { return FeatureActivationSummary.bin(v) }
        let edges = edgeBuffer
        var lo = 0, hi = FeatureActivationSummary.histogramBins - 1      // answer = number of edges ≤ v
        while lo < hi {
            let mid = (lo + hi) >> 1
            if edges[mid] <= v { lo = mid + 1 } else { hi = mid }
        }
        return lo
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
