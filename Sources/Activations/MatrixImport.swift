import Foundation
import Tensor

extension ActivationStore {
    /// Opens activations computed elsewhere as a one-shard store read in place: nothing is copied and nothing is
    /// written beside the file. The file is read once here, to compute the per-hook norm statistics and to refuse
    /// non-finite values (the error names the file, tensor and first bad row).
    /// - a `.npy` file [N, d] (f4 or f2): one hook, named `hookName` (default: the file name without extension);
    /// - a `.safetensors` file with one [N, d] tensor (F32, F16 or BF16) per hook, ordered by the layer number in the
    ///   key (`blocks.5.hook_mlp_out`), else by key name; an optional 1-D `token_ids` tensor [N] gives the tokens.
    /// Without token ids the rows get id -1 (none is BOS) and the store has no context windows.
    public static func openInPlace(_ path: String, model: String = "external", hookName: String? = nil,
                                   context: WorkContext = .silent) throws -> ActivationStore {
        let source: InPlaceShard
        let lower = path.lowercased()
        if lower.hasSuffix(".npy") {
            let reader: Npy.Reader
            do { reader = try Npy.Reader(path: path) } catch { throw ActivationsError("\(error)") }
            let shape = reader.header.shape
            guard shape.count == 2 else { throw ActivationsError("\(path): expected a 2-D array [N, d], found shape \(shape)") }
            guard shape[1] > 0 else { throw ActivationsError("\(path): the array has width d = 0") }
            let name = hookName ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            source = InPlaceShard(path: path, rows: shape[0], hooks: [StoreHook(name: name, layer: StoreHook.layerNumber(in: name) ?? 0, d: shape[1])],
                                  dtype: try storeDType(reader.header.dtype, path: path, tensor: nil), npy: reader)
        } else if lower.hasSuffix(".safetensors") {
            let file: SafeTensorsFile
            do { file = try SafeTensorsFile(path: path, access: .pread) } catch { throw ActivationsError("\(error)") }
            let (hooks, rows) = try matrixHooks(file, path: path)
            let dtypes = Set(try hooks.map { try storeDType(file.tensors[$0.name]!.dtype, path: path, tensor: $0.name) })
            guard dtypes.count == 1, let dtype = dtypes.first else {
                throw ActivationsError("\(path): activation tensors mix dtypes (\(dtypes.map(\.rawValue).sorted().joined(separator: ", "))); store them in one")
            }
            var ids: [Int32]? = nil
            if let t = file.tensors[tokenIdsTensor] {
                guard t.shape == [rows] else { throw ActivationsError("\(path): token_ids has shape \(t.shape) for \(rows) rows") }
                do { ids = try file.int32s(tokenIdsTensor) } catch { throw ActivationsError("\(error)") }
            }
            source = InPlaceShard(path: path, rows: rows, hooks: hooks, dtype: dtype, safetensors: file, tokenIds: ids)
        } else {
            throw ActivationsError("\(path): expected a store folder, a .npy or a .safetensors file of activations")
        }
        let stats = try source.normStats(context: context)
        let manifest = StoreManifest(model: model, hooks: source.hooks, dtype: source.dtype, contextLength: 0,
                                     tokenCount: source.rows, bosTokenId: endOfTextToken,
                                     shards: [StoreShardEntry(file: (path as NSString).lastPathComponent, rows: source.rows)],
                                     normStats: stats, complete: true, info: ["source": path, "read": "in place"])
        return ActivationStore(inPlace: path, manifest: manifest, shard: source)
    }

    /// Copies activations computed elsewhere (the files `openInPlace` reads) into a new store folder of its own.
    @discardableResult
    public static func write(fromMatrices path: String, to folder: String, model: String = "external",
                             hookName: String? = nil, dtype: StoreDType = .f32, shardRows: Int? = nil,
                             overwrite: Bool = false, contextLength: Int = 0) throws -> ActivationStore {
        let source = try openInPlace(path, model: model, hookName: hookName)
        let writer = try ActivationStoreWriter(folder: folder, model: model, hooks: source.hooks, dtype: dtype,
                                               contextLength: contextLength, shardRows: shardRows,
                                               overwrite: overwrite, info: ["source": path])
        // Copy in slabs so an input larger than RAM streams through.
        let slab = max(1, (16 << 20) / max(1, source.dims.reduce(0, +) * 4))
        var start = 0
        while start < source.tokenCount {
            let rows = start..<min(source.tokenCount, start + slab)
            try writer.append(try source.hooks.indices.map { try source.matrix(hook: $0, rows: rows) },
                              tokenIds: try source.tokenIds(rows))
            start = rows.upperBound
        }
        try writer.finish()
        return try ActivationStore(path: folder)
    }

    private static func storeDType(_ dtype: DType, path: String, tensor: String?) throws -> StoreDType {
        switch dtype {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .i32, .i64:
            throw ActivationsError("\(path)\(tensor.map { ": tensor '\($0)'" } ?? ""): is \(dtype.rawValue); activations must be F32, F16 or BF16")
        }
    }

    /// The [N, d] activation tensors of a safetensors file as hooks, in layer order, and their common row count.
    private static func matrixHooks(_ file: SafeTensorsFile, path: String) throws -> ([StoreHook], Int) {
        let matrices = file.names.filter { $0 != tokenIdsTensor }
        guard !matrices.isEmpty else { throw ActivationsError("\(path): no activation tensors") }
        let ordered = matrices.sorted { a, b in
            switch (StoreHook.layerNumber(in: a), StoreHook.layerNumber(in: b)) {
            case let (x?, y?) where x != y: return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return a < b
            }
        }
        var hooks: [StoreHook] = []
        var rowCount: Int? = nil
        for (i, name) in ordered.enumerated() {
            let info = file.tensors[name]!
            guard info.shape.count == 2 else {
                throw ActivationsError("\(path): tensor '\(name)' has shape \(info.shape); every activation tensor must be [N, d]")
            }
            guard info.shape[1] > 0 else { throw ActivationsError("\(path): tensor '\(name)' has width d = 0") }
            if let n = rowCount, n != info.shape[0] {
                throw ActivationsError("\(path): tensor '\(name)' has \(info.shape[0]) rows but '\(ordered[0])' has \(n); all layers must cover the same tokens")
            }
            rowCount = info.shape[0]
            hooks.append(StoreHook(name: name, layer: StoreHook.layerNumber(in: name) ?? i, d: info.shape[1]))
        }
        return (hooks, rowCount!)
    }
}

/// The one shard of a store read in place from a user's file: activations from the file, the per-row integers
/// synthesised (token ids from `token_ids` if the file has them, else -1; no documents or positions).
final class InPlaceShard: StoreShard {
    let path: String
    let rows: Int
    let hooks: [StoreHook]
    let dtype: StoreDType
    private let npy: Npy.Reader?
    private let safetensors: SafeTensorsFile?
    private let tokenIds: [Int32]?

    init(path: String, rows: Int, hooks: [StoreHook], dtype: StoreDType, npy: Npy.Reader? = nil,
         safetensors: SafeTensorsFile? = nil, tokenIds: [Int32]? = nil) {
        self.path = path; self.rows = rows; self.hooks = hooks; self.dtype = dtype
        self.npy = npy; self.safetensors = safetensors; self.tokenIds = tokenIds
    }

    func readRows(_ name: String, rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        guard let hook = hooks.first(where: { $0.name == name }) else {
            throw ActivationsError("\(path): no activations named '\(name)'")
        }
        let elements = (range.lowerBound * hook.d)..<(range.upperBound * hook.d)
        do {
            if let npy { try npy.readFloats(elements: elements, into: out) }
            else { try safetensors!.readFloats(name, elements: elements, into: out) }
        } catch { throw ActivationsError("\(error)") }
    }

    func readInts(_ name: String, rows range: Range<Int>) throws -> [Int32] {
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw ActivationsError("\(path): rows \(range) outside 0..<\(rows)")
        }
        switch name {
        case ActivationStore.tokenIdsTensor:
            return tokenIds.map { Array($0[range]) } ?? [Int32](repeating: -1, count: range.count)
        case ActivationStore.bosMaskTensor:
            return tokenIds.map { $0[range].map { $0 == endOfTextToken ? 1 : 0 } } ?? [Int32](repeating: 0, count: range.count)
        case ActivationStore.docIndexTensor, ActivationStore.positionTensor:
            return [Int32](repeating: -1, count: range.count)
        default:
            throw ActivationsError("\(path): no per-row tensor '\(name)'")
        }
    }

    /// Norm statistics per hook over the non-BOS rows, reading the file once in slabs; a non-finite value is an
    /// error naming the file, the tensor and the row.
    func normStats(context: WorkContext) throws -> [NormStats] {
        var stats = Array(repeating: NormStats(), count: hooks.count)
        let slab = max(1, (8 << 20) / max(1, hooks.map(\.d).max()! * 4))
        var buffer = [Float]()
        var start = 0
        while start < rows {
            try context.checkCancelled()
            let end = min(rows, start + slab)
            let bos = try readInts(ActivationStore.bosMaskTensor, rows: start..<end)
            for (h, hook) in hooks.enumerated() {
                buffer = [Float](repeating: 0, count: (end - start) * hook.d)
                try buffer.withUnsafeMutableBufferPointer { p in
                    try readRows(hook.name, rows: start..<end, into: p.baseAddress!)
                    for r in 0..<(end - start) {
                        let norm = Kernels.l2norm(p.baseAddress! + r * hook.d, count: hook.d)
                        guard norm.isFinite else {
                            let bad = (0..<hook.d).first { !p[r * hook.d + $0].isFinite }
                            throw ActivationsError("\(path): tensor '\(hook.name)', row \(start + r)\(bad.map { ", column \($0)" } ?? ""): \(bad.map { "value \(p[r * hook.d + $0])" } ?? "the norm overflows Float32"); activations must be finite")
                        }
                        if bos[r] == 0 { stats[h].add(norm) }
                    }
                }
            }
            start = end
            context.report(ProgressUpdate(task: "read", done: start, total: rows, unit: "tokens"))
        }
        return stats
    }
}
