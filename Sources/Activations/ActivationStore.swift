import Foundation
import Tensor

/// An activation store opened for reading: a folder with `manifest.json` and safetensors shards, each holding one
/// [rows, d] matrix per hook plus `token_ids`, `doc_index`, `position` and `bos_mask` (I32, one per row).
///
/// Nothing here loads a whole store: every read touches one shard at a time and copies only the rows asked for.
/// Opening checks every shard's header against the manifest (files present, row counts, shapes, dtypes), so a
/// damaged store fails at open with a message naming the shard.
public final class ActivationStore: @unchecked Sendable {
    // @unchecked: all stored properties are immutable except the one-shard cache, which `cacheLock` guards.
    public let folder: String
    public let manifest: StoreManifest
    /// Global row index of the first row of each shard, plus the total at the end.
    public let shardStarts: [Int]
    private let cacheLock = NSLock()
    private var cachedShard: (index: Int, file: StoreShard)?
    /// Set for activations read in place from a user's .npy/.safetensors file: the one shard.
    private let external: StoreShard?

    public static let tokenIdsTensor = "token_ids"
    public static let docIndexTensor = "doc_index"
    public static let positionTensor = "position"
    public static let bosMaskTensor = "bos_mask"

    /// Opens the store folder `path`. A store whose writing was interrupted is refused unless `allowIncomplete`
    /// (then `manifest.complete` is false and every summary says so).
    public init(path: String, allowIncomplete: Bool = false) throws {
        folder = path
        manifest = try StoreManifest.read(folder: path, allowIncomplete: allowIncomplete)
        var starts = [0]
        for s in manifest.shards { starts.append(starts.last! + s.rows) }   // sums checked by the manifest
        shardStarts = starts
        external = nil
        for index in manifest.shards.indices { try validateShard(index) }
    }

    /// A store over rows that live in a user's file, read in place (never copied, nothing written beside it).
    init(inPlace path: String, manifest: StoreManifest, shard: StoreShard) {
        folder = path
        self.manifest = manifest
        shardStarts = [0, manifest.tokenCount]
        external = shard
    }

    private func validateShard(_ index: Int) throws {
        let entry = manifest.shards[index]
        let file = try openShard(index)
        let name = entry.file
        for hook in manifest.hooks {
            guard let t = file.tensors[hook.name] else {
                throw ActivationsError("store \(folder): shard \(name) has no tensor '\(hook.name)' listed in the manifest")
            }
            guard t.shape == [entry.rows, hook.d] else {
                throw ActivationsError("store \(folder): manifest says shard \(name) holds [\(entry.rows), \(hook.d)] for '\(hook.name)' but the shard has \(t.shape)")
            }
            guard t.dtype == manifest.dtype.tensorDType else {
                throw ActivationsError("store \(folder): manifest dtype is \(manifest.dtype.rawValue) but shard \(name) stores '\(hook.name)' as \(t.dtype.rawValue)")
            }
        }
        for tensor in [Self.tokenIdsTensor, Self.docIndexTensor, Self.positionTensor, Self.bosMaskTensor] {
            guard let t = file.tensors[tensor] else {
                throw ActivationsError("store \(folder): shard \(name) has no '\(tensor)' tensor")
            }
            guard t.shape == [entry.rows], t.dtype == .i32 else {
                throw ActivationsError("store \(folder): manifest says shard \(name) has \(entry.rows) rows but its '\(tensor)' is \(t.dtype.rawValue) \(t.shape)")
            }
        }
    }

    private func openShard(_ index: Int) throws -> ShardFile {
        let path = (folder as NSString).appendingPathComponent(manifest.shards[index].file)
        guard FileManager.default.fileExists(atPath: path) else {
            throw ActivationsError("store \(folder): shard file \(manifest.shards[index].file) listed in the manifest is missing")
        }
        return try ShardFile(path: path)
    }

    /// The shard, opened once and kept while consecutive reads stay in it (one open file at most).
    func shard(_ index: Int) throws -> StoreShard {
        if let external { return external }
        cacheLock.lock(); defer { cacheLock.unlock() }
        if let c = cachedShard, c.index == index { return c.file }
        let file = try openShard(index)
        cachedShard = (index, file)
        return file
    }

    // MARK: shape

    public var hooks: [StoreHook] { manifest.hooks }
    public var hookNames: [String] { manifest.hooks.map(\.name) }
    public var layerCount: Int { manifest.hooks.count }
    public var dims: [Int] { manifest.hooks.map(\.d) }
    public var tokenCount: Int { manifest.tokenCount }
    public var contextLength: Int { manifest.contextLength }
    public var dtype: StoreDType { manifest.dtype }
    public var shardCount: Int { manifest.shards.count }
    public var normStats: [NormStats] { manifest.normStats }

    /// Index into `hooks` of a hook given by name or by layer number.
    public func hookIndex(named name: String) throws -> Int {
        if let i = manifest.hooks.firstIndex(where: { $0.name == name }) { return i }
        throw ActivationsError("store \(folder) has no hook '\(name)' (has \(hookNames.joined(separator: ", ")))")
    }
    public func hookIndex(layer: Int) throws -> Int {
        if let i = manifest.hooks.firstIndex(where: { $0.layer == layer }) { return i }
        throw ActivationsError("store \(folder) has no layer \(layer) (has \(manifest.hooks.map { String($0.layer) }.joined(separator: ", ")))")
    }

    /// The shard holding global row `row`, and the row's index inside it.
    public func locate(row: Int) -> (shard: Int, offset: Int) {
        var lo = 0, hi = shardStarts.count - 2
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if shardStarts[mid] <= row { lo = mid } else { hi = mid - 1 }
        }
        return (lo, row - shardStarts[lo])
    }

    // MARK: reading

    /// Rows `rows` (global token indices) of hook `hook` into `out` (rows.count × d floats), across shards.
    public func readRows(hook: Int, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        try checkRange(rows)
        let d = manifest.hooks[hook].d
        try forEachShardPiece(rows) { shard, local, written in
            try shard.readRows(manifest.hooks[hook].name, rows: local, into: out + written * d)
        }
    }

    /// Rows `rows` of hook `hook` as a matrix.
    public func matrix(hook: Int, rows: Range<Int>) throws -> Matrix {
        var m = Matrix(rows: rows.count, cols: manifest.hooks[hook].d)
        try m.data.withUnsafeMutableBufferPointer { try readRows(hook: hook, rows: rows, into: $0.baseAddress!) }
        return m
    }

    /// The activation of hook `hook` at token `token` (random access).
    public func row(hook: Int, token: Int) throws -> [Float] {
        try matrix(hook: hook, rows: token..<(token + 1)).data
    }

    public func tokenIds(_ rows: Range<Int>) throws -> [Int32] { try ints(Self.tokenIdsTensor, rows) }
    public func documentIndex(_ rows: Range<Int>) throws -> [Int32] { try ints(Self.docIndexTensor, rows) }
    public func positions(_ rows: Range<Int>) throws -> [Int32] { try ints(Self.positionTensor, rows) }
    public func bosMask(_ rows: Range<Int>) throws -> [Bool] { try ints(Self.bosMaskTensor, rows).map { $0 != 0 } }

    private func ints(_ name: String, _ rows: Range<Int>) throws -> [Int32] {
        try checkRange(rows)
        var out: [Int32] = []
        out.reserveCapacity(rows.count)
        try forEachShardPiece(rows) { shard, local, _ in out.append(contentsOf: try shard.readInts(name, rows: local)) }
        return out
    }

    private func checkRange(_ rows: Range<Int>) throws {
        guard rows.lowerBound >= 0, rows.upperBound <= tokenCount else {
            throw ActivationsError("store \(folder): rows \(rows.lowerBound)..<\(rows.upperBound) outside 0..<\(tokenCount)")
        }
    }

    private func forEachShardPiece(_ rows: Range<Int>, _ body: (StoreShard, Range<Int>, Int) throws -> Void) throws {
        var row = rows.lowerBound
        while row < rows.upperBound {
            let (index, offset) = locate(row: row)
            let take = min(rows.upperBound - row, manifest.shards[index].rows - offset)
            try body(try shard(index), offset..<(offset + take), row - rows.lowerBound)
            row += take
        }
    }

    // MARK: sequential scan

    /// A run of consecutive rows handed to a scan.
    public struct Chunk {
        /// Global index of the first row.
        public var start: Int
        public var tokenIds: [Int32]
        public var isBOS: [Bool]
        /// One matrix per requested hook, rows aligned with `tokenIds`.
        public var activations: [Matrix]
        public var rowCount: Int { tokenIds.count }
    }

    /// Walks the store in order, `chunkRows` rows at a time (memory: one chunk), for the given hooks.
    public func scan(hooks selected: [Int]? = nil, chunkRows: Int = 4096, context: WorkContext = .silent,
                     _ body: (Chunk) throws -> Void) throws {
        let which = selected ?? Array(manifest.hooks.indices)
        var start = 0
        while start < tokenCount {
            try context.checkCancelled()
            let range = start..<min(tokenCount, start + max(1, chunkRows))
            let chunk = Chunk(start: start, tokenIds: try tokenIds(range), isBOS: try bosMask(range),
                              activations: try which.map { try matrix(hook: $0, rows: range) })
            try body(chunk)
            start = range.upperBound
            context.report(ProgressUpdate(task: "scan", done: start, total: tokenCount, unit: "tokens"))
        }
    }

    /// Recomputes the per-hook norm statistics from the stored rows (the manifest already carries them; this is
    /// the check, and the way to get them for non-default options).
    public func computeNormStats(includeBOS: Bool = false, context: WorkContext = .silent) throws -> [NormStats] {
        var stats = Array(repeating: NormStats(), count: layerCount)
        try scan(context: context) { chunk in
            for (h, m) in chunk.activations.enumerated() {
                m.data.withUnsafeBufferPointer { p in
                    for r in 0..<chunk.rowCount where includeBOS || !chunk.isBOS[r] {
                        stats[h].add(Kernels.l2norm(p.baseAddress! + r * m.cols, count: m.cols))
                    }
                }
            }
        }
        return stats
    }
}
