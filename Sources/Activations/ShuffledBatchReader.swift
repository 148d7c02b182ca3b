import Foundation
import Tensor

/// Training batches from a store in random order with bounded memory.
///
/// Each epoch the store is cut into chunks of `chunkRows` consecutive rows, the chunks are put in random order,
/// and they are poured into a shuffle buffer of `bufferRows` rows; each batch row is drawn uniformly from the
/// buffer (and removed), which is topped up from the next chunks whenever it falls to half. Every row (BOS rows
/// excluded by default) therefore comes out exactly once per epoch, all hooks aligned on the same tokens, and
/// memory is the buffer plus one batch whatever the store's size.
public final class ShuffledBatchReader {
    public let store: ActivationStore
    public let hooks: [Int]
    public let dims: [Int]
    public let bufferRows: Int
    public let chunkRows: Int
    public let includeBOS: Bool
    public private(set) var epoch = 0
    /// Rows handed out in the current epoch.
    public private(set) var rowsServedThisEpoch = 0
    private var rng: RNG
    private var buffers: [UnsafeMutablePointer<Float>]
    private var filled = 0
    private var pendingChunks: [Range<Int>] = []

    /// `memoryBudgetBytes` sizes the shuffle buffer (default 256 MiB, never more rows than the store has).
    public init(store: ActivationStore, hooks: [Int]? = nil, memoryBudgetBytes: Int = 256 << 20,
                chunkRows: Int = 256, includeBOS: Bool = false, seed: UInt64 = 0) throws {
        let selected = hooks ?? Array(store.hooks.indices)
        guard !selected.isEmpty, selected.allSatisfy({ store.hooks.indices.contains($0) }) else {
            throw ActivationsError("shuffled reader: hook indices \(selected) outside 0..<\(store.layerCount)")
        }
        guard store.tokenCount > 0 else { throw ActivationsError("store \(store.folder) is empty") }
        self.store = store
        self.hooks = selected
        self.dims = selected.map { store.hooks[$0].d }
        let rowBytes = dims.reduce(0, +) * 4
        let budgetRows = memoryBudgetBytes / rowBytes
        guard budgetRows >= 2 else {
            throw ActivationsError("memory budget of \(memoryBudgetBytes) bytes holds fewer than 2 rows of \(rowBytes) bytes")
        }
        let capacity = min(budgetRows, store.tokenCount)
        bufferRows = capacity
        self.chunkRows = max(1, min(chunkRows, capacity / 2))
        self.includeBOS = includeBOS
        rng = RNG(seed: seed)
        buffers = dims.map { d in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: capacity * d)
            p.initialize(repeating: 0, count: capacity * d)
            return p
        }
        startEpoch()
    }

    deinit { for b in buffers { b.deallocate() } }

    public var layerCount: Int { hooks.count }

    /// Rows per epoch: all rows, or the non-BOS ones (counted by the manifest's norm statistics).
    public var rowsPerEpoch: Int { includeBOS ? store.tokenCount : store.normStats[hooks[0]].count }

    private func startEpoch() {
        var chunks: [Range<Int>] = []
        for s in 0..<store.shardCount {
            var a = store.shardStarts[s]
            while a < store.shardStarts[s + 1] {
                let b = min(store.shardStarts[s + 1], a + chunkRows)
                chunks.append(a..<b)
                a = b
            }
        }
        rng.shuffle(&chunks)
        pendingChunks = chunks
        rowsServedThisEpoch = 0
    }

    private func refill() throws {
        while let chunk = pendingChunks.last, filled + chunk.count <= bufferRows {
            pendingChunks.removeLast()
            for (k, h) in hooks.enumerated() {
                try store.readRows(hook: h, rows: chunk, into: buffers[k] + filled * dims[k])
            }
            if includeBOS { filled += chunk.count; continue }
            let bos = try store.bosMask(chunk)
            var kept = filled
            for r in 0..<chunk.count where !bos[r] {
                if kept != filled + r {
                    for k in hooks.indices {
                        (buffers[k] + kept * dims[k]).update(from: buffers[k] + (filled + r) * dims[k], count: dims[k])
                    }
                }
                kept += 1
            }
            filled = kept
        }
    }

    /// The next batch of up to `rows` rows of this epoch (one matrix per hook), or nil once the epoch is spent;
    /// the last batch of an epoch may be short. The following call starts the next epoch.
    public func nextBatchInEpoch(rows: Int) throws -> [Matrix]? {
        guard rows > 0 else { throw ActivationsError("batch size must be positive, got \(rows)") }
        if filled == 0 && pendingChunks.isEmpty {
            epoch += 1
            startEpoch()
            return nil
        }
        var out = dims.map { Matrix(rows: rows, cols: $0) }
        let n = try fill(&out, from: 0, count: rows)
        if n < rows { out = out.map { $0.rows(0..<n) } }
        return n > 0 ? out : try nextBatchInEpoch(rows: rows)
    }

    /// Exactly `rows` rows, continuing into the next epoch when this one runs out (the trainer's view).
    public func nextBatch(rows: Int) throws -> [Matrix] {
        guard rows > 0 else { throw ActivationsError("batch size must be positive, got \(rows)") }
        var out = dims.map { Matrix(rows: rows, cols: $0) }
        var done = 0
        while done < rows {
            done += try fill(&out, from: done, count: rows - done)
            if done < rows { epoch += 1; startEpoch() }
        }
        return out
    }

    /// Moves up to `count` random buffer rows into `out` starting at row `from`; returns how many were moved
    /// (fewer only when the epoch is spent).
    private func fill(_ out: inout [Matrix], from: Int, count: Int) throws -> Int {
        var written = 0
        while written < count {
            if filled <= bufferRows / 2 && !pendingChunks.isEmpty { try refill() }
            if filled == 0 { break }
            let j = rng.int(below: filled)
            let last = filled - 1
            for k in hooks.indices {
                let d = dims[k]
                out[k].data.withUnsafeMutableBufferPointer {
                    ($0.baseAddress! + (from + written) * d).update(from: buffers[k] + j * d, count: d)
                }
                if j != last { (buffers[k] + j * d).update(from: buffers[k] + last * d, count: d) }
            }
            filled -= 1
            written += 1
        }
        rowsServedThisEpoch += written
        return written
    }
}
