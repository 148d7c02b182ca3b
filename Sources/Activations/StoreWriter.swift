import Foundation
import Tensor

/// Writes an activation store shard by shard, into a hidden temporary sibling of the destination that is swapped in
/// by `finish()`: until then a store that was at the destination stays whole and loadable, and a process killed at
/// any moment leaves either the old store or the complete new one, never a mix. Rows are buffered until `shardRows`
/// is reached; each full shard is written atomically (temp file + rename) and the manifest rewritten, so the staging
/// folder is always a valid store of the shards finished so far.
///
/// The destination may be new, an empty folder, or an nsae store (replaced only with `overwrite`); any other folder
/// is refused: nsae never deletes files it did not write.
public final class ActivationStoreWriter {
    /// Where the store will be once finished.
    public let folder: String
    /// Where it is being written until then (extra files such as a synthetic store's ground truth go here too).
    public let workingFolder: String
    public private(set) var manifest: StoreManifest
    public let shardRows: Int
    private var buffers: [[Float]]
    private var tokenIds: [Int32] = []
    private var docIndex: [Int32] = []
    private var positions: [Int32] = []
    private var bosMask: [Int32] = []
    private var finished = false
    /// Whether the destination already held a store (so an interrupted write must not replace it).
    private let replacesStore: Bool

    /// Default shard size: about 64 MiB of activations, rounded to whole windows.
    public static func defaultShardRows(dims: [Int], dtype: StoreDType, contextLength: Int) -> Int {
        let rowBytes = max(1, dims.reduce(0, +) * dtype.byteSize)
        let rows = max(1, (64 << 20) / rowBytes)
        return max(contextLength, rows / max(1, contextLength) * max(1, contextLength))
    }

    /// Refuses a destination nsae may not write to; returns whether it holds a store that `overwrite` replaces.
    static func checkDestination(_ folder: String, overwrite: Bool) throws -> Bool {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDir) else { return false }
        guard isDir.boolValue else { throw ActivationsError("\(folder) is a file; a store is written to a folder") }
        let manifestPath = (folder as NSString).appendingPathComponent("manifest.json")
        if fm.fileExists(atPath: manifestPath) {
            guard (try? StoreManifest.read(folder: folder, allowIncomplete: true)) != nil else {
                throw ActivationsError("\(folder) has a manifest.json that is not an nsae store's; nsae does not write over it, choose a new folder")
            }
            guard overwrite else {
                throw ActivationsError("store \(folder) already exists; pass overwrite=true to replace it (the old store stays until the new one is complete)")
            }
            return true
        }
        let existing = (try? fm.contentsOfDirectory(atPath: folder)) ?? []
        guard existing.isEmpty else {
            throw ActivationsError("\(folder) exists and is not an nsae activation store (no manifest.json; it holds \(existing.count) item\(existing.count == 1 ? "" : "s")); nsae writes a store only to a new or empty folder, or over an nsae store with overwrite=true")
        }
        return false
    }

    /// Starts a store for `folder` (new, empty, or an nsae store with `overwrite`).
    public init(folder: String, model: String, hooks: [StoreHook], dtype: StoreDType, contextLength: Int,
                shardRows: Int? = nil, overwrite: Bool = false, info: [String: String] = [:]) throws {
        guard !hooks.isEmpty else { throw ActivationsError("a store needs at least one hook") }
        for h in hooks where h.d <= 0 { throw ActivationsError("hook \(h.name) has width \(h.d); must be positive") }
        guard Set(hooks.map(\.name)).count == hooks.count else {
            throw ActivationsError("hook names must be distinct, got \(hooks.map(\.name))")
        }
        let reserved: Set = [ActivationStore.tokenIdsTensor, ActivationStore.docIndexTensor,
                             ActivationStore.positionTensor, ActivationStore.bosMaskTensor, "__metadata__"]
        for h in hooks where reserved.contains(h.name) { throw ActivationsError("hook name '\(h.name)' is reserved") }
        replacesStore = try Self.checkDestination(folder, overwrite: overwrite)
        self.folder = folder
        do { workingFolder = try AtomicDirectory.makeStagingSibling(of: folder) } catch {
            throw ActivationsError("cannot start the store \(folder): \(error)")
        }
        let rows = shardRows ?? Self.defaultShardRows(dims: hooks.map(\.d), dtype: dtype, contextLength: contextLength)
        guard rows > 0 else { throw ActivationsError("shard rows must be positive, got \(rows)") }
        self.shardRows = rows
        manifest = StoreManifest(model: model, hooks: hooks, dtype: dtype, contextLength: contextLength, tokenCount: 0,
                                 bosTokenId: endOfTextToken, shards: [],
                                 normStats: Array(repeating: NormStats(), count: hooks.count),
                                 complete: false, info: info)
        buffers = hooks.map { _ in [] }
        try manifest.write(folder: workingFolder)
    }

    /// A writer dropped before `finish()` (an error part-way) removes its staging folder; the destination is untouched.
    deinit {
        if !finished { try? FileManager.default.removeItem(atPath: workingFolder) }
    }

    /// Appends rows: `activations[h]` is [n, d_h] for hook h, given as pointers so callers can pass views of larger
    /// buffers without copying. `tokenIds`, `documentIndex`, `positions` have n entries; BOS is `token == 50256`.
    public func append(activations: [UnsafeBufferPointer<Float>], tokenIds ids: [Int32], documentIndex docs: [Int32],
                       positions pos: [Int32]) throws {
        guard !finished else { throw ActivationsError("store \(folder) is already finished") }
        let n = ids.count
        guard activations.count == manifest.hooks.count else {
            throw ActivationsError("append got \(activations.count) activation matrices for \(manifest.hooks.count) hooks")
        }
        guard docs.count == n, pos.count == n else {
            throw ActivationsError("append got \(n) token ids, \(docs.count) document indices, \(pos.count) positions")
        }
        for (h, a) in activations.enumerated() where a.count != n * manifest.hooks[h].d {
            throw ActivationsError("append: hook \(manifest.hooks[h].name) got \(a.count) values, expected \(n) rows × \(manifest.hooks[h].d)")
        }
        var row = 0
        while row < n {
            let take = min(n - row, shardRows - tokenIds.count)
            for (h, a) in activations.enumerated() {
                let d = manifest.hooks[h].d
                buffers[h].append(contentsOf: UnsafeBufferPointer(rebasing: a[(row * d)..<((row + take) * d)]))
            }
            tokenIds.append(contentsOf: ids[row..<(row + take)])
            docIndex.append(contentsOf: docs[row..<(row + take)])
            positions.append(contentsOf: pos[row..<(row + take)])
            bosMask.append(contentsOf: ids[row..<(row + take)].map { $0 == endOfTextToken ? 1 : 0 })
            row += take
            if tokenIds.count == shardRows { try flush() }
        }
    }

    /// Appends rows given as matrices ([n, d_h] per hook).
    public func append(_ activations: [Matrix], tokenIds ids: [Int32], documentIndex docs: [Int32]? = nil,
                       positions pos: [Int32]? = nil) throws {
        for (h, m) in activations.enumerated() where h < manifest.hooks.count && (m.cols != manifest.hooks[h].d || m.rows != ids.count) {
            throw ActivationsError("append: hook \(manifest.hooks[h].name) got [\(m.rows), \(m.cols)], expected [\(ids.count), \(manifest.hooks[h].d)]")
        }
        let docs = docs ?? Array(repeating: -1, count: ids.count)
        let pos = pos ?? Array(repeating: -1, count: ids.count)
        try withBuffers(activations) { try append(activations: $0, tokenIds: ids, documentIndex: docs, positions: pos) }
    }

    /// Writes the pending rows as a shard, then the manifest.
    private func flush() throws {
        let rows = tokenIds.count
        guard rows > 0 else { return }
        let name = String(format: "shard-%05d.safetensors", manifest.shards.count)
        var stats = manifest.normStats
        let data: Data = try withBuffers(buffers.enumerated().map { Matrix(rows: rows, cols: manifest.hooks[$0.offset].d, data: $0.element) }) { views in
            for (h, v) in views.enumerated() {
                let d = manifest.hooks[h].d
                for r in 0..<rows {
                    let norm = Kernels.l2norm(v.baseAddress! + r * d, count: d)
                    guard norm.isFinite else {
                        throw ActivationsError("hook '\(manifest.hooks[h].name)', row \(manifest.tokenCount + r): the activation holds NaN or infinity (or overflows Float32); activations must be finite")
                    }
                    if bosMask[r] == 0 { stats[h].add(norm) }
                }
            }
            let floats = views.enumerated().map {
                ShardEncoder.FloatTensor(name: manifest.hooks[$0.offset].name, rows: rows, cols: manifest.hooks[$0.offset].d, values: $0.element)
            }
            return try ShardEncoder.encode(floats: floats, dtype: manifest.dtype, ints: [
                .init(name: ActivationStore.tokenIdsTensor, values: tokenIds),
                .init(name: ActivationStore.docIndexTensor, values: docIndex),
                .init(name: ActivationStore.positionTensor, values: positions),
                .init(name: ActivationStore.bosMaskTensor, values: bosMask),
            ])
        }
        try AtomicWrite.write(data, to: (workingFolder as NSString).appendingPathComponent(name))
        manifest.shards.append(StoreShardEntry(file: name, rows: rows))
        manifest.tokenCount += rows
        manifest.normStats = stats
        try manifest.write(folder: workingFolder)
        for h in buffers.indices { buffers[h].removeAll(keepingCapacity: true) }
        tokenIds.removeAll(keepingCapacity: true); docIndex.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true); bosMask.removeAll(keepingCapacity: true)
    }

    /// Writes the last partial shard, marks the store complete and swaps it in at `folder`. With `complete: false`
    /// (an interrupted harvest) the rows so far are kept, marked incomplete, only where no store was there before;
    /// an interrupted replacement leaves the old store as it was.
    @discardableResult
    public func finish(complete: Bool = true, info extra: [String: String] = [:]) throws -> StoreManifest {
        guard !finished else { return manifest }
        try flush()
        manifest.complete = complete
        for (k, v) in extra { manifest.info[k] = v }
        try manifest.write(folder: workingFolder)
        finished = true
        if !complete && replacesStore {
            try? FileManager.default.removeItem(atPath: workingFolder)
            return manifest
        }
        do { try AtomicDirectory.swapIn(workingFolder, at: folder) } catch {
            throw ActivationsError("cannot put the finished store in place: \(error) (its rows are in \(workingFolder))")
        }
        return manifest
    }

    public var rowsWritten: Int { manifest.tokenCount + tokenIds.count }
}

/// Calls `body` with read-only views of the matrices' storage.
func withBuffers<R>(_ matrices: [Matrix], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
    var views: [UnsafeBufferPointer<Float>] = []
    func step(_ i: Int) throws -> R {
        if i == matrices.count { return try body(views) }
        return try matrices[i].data.withUnsafeBufferPointer { p in
            views.append(p)
            return try step(i + 1)
        }
    }
    return try step(0)
}
