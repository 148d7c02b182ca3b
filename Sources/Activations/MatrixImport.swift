import Foundation
import Tensor

extension ActivationStore {
    /// Builds a store from activations computed elsewhere:
    /// - a `.npy` file [N, d]: one hook, named `hookName` (default: the file name without extension);
    /// - a `.safetensors` file with one [N, d] tensor per hook, ordered by the layer number in the key
    ///   (`blocks.5.hook_mlp_out`), else by key name; an optional 1-D `token_ids` tensor [N] gives the tokens.
    /// Without token ids the rows get id -1 (none is BOS) and the store has no context windows (context length 0).
    @discardableResult
    public static func write(fromMatrices path: String, to folder: String, model: String = "external",
                             hookName: String? = nil, dtype: StoreDType = .f32, shardRows: Int? = nil,
                             overwrite: Bool = false, contextLength: Int = 0) throws -> ActivationStore {
        let lower = path.lowercased()
        if lower.hasSuffix(".npy") {
            let array: Npy.Array
            do { array = try Npy.read(path: path) } catch { throw ActivationsError("\(path): \(error)") }
            guard array.shape.count == 2 else {
                throw ActivationsError("\(path): expected a 2-D array [N, d], found shape \(array.shape)")
            }
            let name = hookName ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            let hook = StoreHook(name: name, layer: StoreHook.layerNumber(in: name) ?? 0, d: array.shape[1])
            let writer = try ActivationStoreWriter(folder: folder, model: model, hooks: [hook], dtype: dtype,
                                                   contextLength: contextLength, shardRows: shardRows,
                                                   overwrite: overwrite, info: ["source": path])
            let ids = [Int32](repeating: -1, count: array.shape[0])
            try writer.append([array.matrix], tokenIds: ids)
            try writer.finish()
            return try ActivationStore(path: folder)
        }
        guard lower.hasSuffix(".safetensors") else {
            throw ActivationsError("\(path): expected a .npy or .safetensors file of activations")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw ActivationsError("\(error)") }
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
            let info = try file.info(name)
            guard info.shape.count == 2 else {
                throw ActivationsError("\(path): tensor '\(name)' has shape \(info.shape); every activation tensor must be [N, d]")
            }
            if let n = rowCount, n != info.shape[0] {
                throw ActivationsError("\(path): tensor '\(name)' has \(info.shape[0]) rows but '\(ordered[0])' has \(n); all layers must cover the same tokens")
            }
            rowCount = info.shape[0]
            hooks.append(StoreHook(name: name, layer: StoreHook.layerNumber(in: name) ?? i, d: info.shape[1]))
        }
        let n = rowCount!
        var ids = [Int32](repeating: -1, count: n)
        if file.tensors[tokenIdsTensor] != nil {
            let t = try file.int32s(tokenIdsTensor)
            guard t.count == n else { throw ActivationsError("\(path): token_ids has \(t.count) entries for \(n) rows") }
            ids = t
        }
        let writer = try ActivationStoreWriter(folder: folder, model: model, hooks: hooks, dtype: dtype,
                                               contextLength: contextLength, shardRows: shardRows,
                                               overwrite: overwrite, info: ["source": path])
        // Copy in slabs so a mapped input larger than RAM streams through.
        let slab = max(1, (16 << 20) / max(1, hooks.map(\.d).reduce(0, +) * 4))
        var start = 0
        while start < n {
            let end = min(n, start + slab)
            var parts: [Matrix] = []
            for h in hooks {
                var m = Matrix(rows: end - start, cols: h.d)
                try m.data.withUnsafeMutableBufferPointer {
                    try file.readFloats(h.name, elements: (start * h.d)..<(end * h.d), into: $0.baseAddress!)
                }
                parts.append(m)
            }
            try writer.append(parts, tokenIds: Array(ids[start..<end]))
            start = end
        }
        try writer.finish()
        return try ActivationStore(path: folder)
    }
}
