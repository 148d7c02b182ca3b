import Foundation
import Tensor

/// Per-token SAE codes out of nsae, as a sparse matrix other tools read directly: a safetensors file holding CSR
/// (`row_offsets` I64 [N+1], `feature` I32 [nnz], `value` F32 [nnz], features ascending within a row) for the
/// first N non-BOS rows of one store hook, plus each row's `token_ids`, `positions` (offset in its document),
/// `document_index` (I32 [N]) and `store_row` (I64 [N], the row in the store). In Python:
/// `scipy.sparse.csr_matrix((f["value"], f["feature"], f["row_offsets"]), shape=(N, d_sae))` with
/// `f = safetensors.numpy.load_file(path)`; the metadata holds `d_sae`, `hook_name` and `format` = "csr".
public enum CodesExport {
    public struct Summary: Sendable, Equatable {
        public var rows: Int
        public var nonZeros: Int
    }

    /// Encodes rows of store hook `hook` with `encode` ([rows, d] → [rows, d_sae]) in chunks and writes the file at
    /// `path` (atomically). `maxTokens` nil takes every non-BOS row.
    @discardableResult
    public static func write(store: ActivationStore, hook: Int, dSAE: Int, maxTokens: Int?, to path: String,
                             chunkRows: Int = 4096, context: WorkContext = .silent,
                             encode: (Matrix) throws -> Matrix) throws -> Summary {
        guard hook >= 0 && hook < store.hooks.count else { throw ActivationsError("encode: the store has no hook \(hook)") }
        if let maxTokens, maxTokens < 1 { throw ActivationsError("encode: tokens must be at least 1, got \(maxTokens)") }
        guard dSAE > 0 && dSAE <= Int(Int32.max) else { throw ActivationsError("encode: d_sae \(dSAE) does not fit an I32 feature index") }
        var rowOffsets: [Int64] = [0], features: [Int64] = [], values: [Float] = []
        var tokenIds: [Int64] = [], positions: [Int64] = [], documents: [Int64] = [], storeRows: [Int64] = []
        let limit = maxTokens ?? Int.max
        var start = 0
        while start < store.tokenCount && tokenIds.count < limit {
            try context.checkCancelled()
            let range = start..<min(store.tokenCount, start + chunkRows)
            let bos = try store.bosMask(range)
            let keep = range.indices.filter { !bos[$0 - range.lowerBound] }.prefix(limit - tokenIds.count)
            if !keep.isEmpty {
                let x = try store.matrix(hook: hook, rows: range)
                var selected = Matrix(rows: keep.count, cols: x.cols)
                for (i, r) in keep.enumerated() {
                    let from = (r - range.lowerBound) * x.cols
                    selected.data.replaceSubrange((i * x.cols)..<((i + 1) * x.cols), with: x.data[from..<(from + x.cols)])
                }
                let codes = try encode(selected)
                guard codes.rows == keep.count && codes.cols == dSAE else {
                    throw ActivationsError("encode: the SAE returned [\(codes.rows), \(codes.cols)] codes, expected [\(keep.count), \(dSAE)]")
                }
                for i in 0..<codes.rows {
                    for f in 0..<dSAE {
                        let v = codes.data[i * dSAE + f]
                        if v != 0 { features.append(Int64(f)); values.append(v) }
                    }
                    rowOffsets.append(Int64(features.count))
                }
                let ids = try store.tokenIds(range), pos = try store.positions(range), docs = try store.documentIndex(range)
                for r in keep {
                    let k = r - range.lowerBound
                    tokenIds.append(Int64(ids[k])); positions.append(Int64(pos[k])); documents.append(Int64(docs[k]))
                    storeRows.append(Int64(r))
                }
            }
            context.report(ProgressUpdate(task: "encode", done: tokenIds.count, total: min(limit, store.tokenCount), unit: "tokens"))
            start = range.upperBound
        }
        guard !tokenIds.isEmpty else { throw ActivationsError("encode: the store has no non-BOS rows to encode") }
        let n = tokenIds.count
        try SafeTensors.write([
            TensorToWrite(name: "row_offsets", dtype: .i64, shape: [n + 1], ints: rowOffsets),
            TensorToWrite(name: "feature", dtype: .i32, shape: [features.count], ints: features),
            TensorToWrite(name: "value", dtype: .f32, shape: [values.count], floats: values),
            TensorToWrite(name: "token_ids", dtype: .i32, shape: [n], ints: tokenIds),
            TensorToWrite(name: "positions", dtype: .i32, shape: [n], ints: positions),
            TensorToWrite(name: "document_index", dtype: .i32, shape: [n], ints: documents),
            TensorToWrite(name: "store_row", dtype: .i64, shape: [n], ints: storeRows),
        ], to: path, metadata: ["format": "csr", "d_sae": String(dSAE), "hook_name": store.hooks[hook].name,
                                "rows": String(n), "store": store.folder])
        return Summary(rows: n, nonZeros: values.count)
    }
}
