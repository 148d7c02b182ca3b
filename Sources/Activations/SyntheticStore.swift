import Foundation
import Tensor
import SAE

extension ActivationStore {
    /// File beside a synthetic store's shards holding the true dictionary ([features, d], unit rows), so `recovery`
    /// can score SAEs trained on the store.
    public static let groundTruthFile = "ground_truth.safetensors"

    /// Writes `tokens` rows of SAE's synthetic generator as a store: one hook per generator layer (named
    /// `synthetic.layer{l}`), token ids -1 (no BOS, no context windows). The ground truth is written before the
    /// shards, so every readable synthetic store has it.
    @discardableResult
    public static func writeSynthetic(_ data: SyntheticData, tokens: Int, to folder: String, dtype: StoreDType = .f32,
                                      shardRows: Int? = nil, overwrite: Bool = false,
                                      context: WorkContext = .silent) throws -> ActivationStore {
        guard tokens > 0 else { throw ActivationsError("synthetic store: tokens must be positive, got \(tokens)") }
        let hooks = data.dims.enumerated().map { StoreHook(name: "synthetic.layer\($0.offset)", layer: $0.offset, d: $0.element) }
        let info = ["source": "synthetic", "features": String(data.features), "active": String(data.active),
                    "norms": data.norms.map { String($0) }.joined(separator: ","),
                    "magnitudes": "\(data.magnitudes.lowerBound)...\(data.magnitudes.upperBound)"]
        let writer = try ActivationStoreWriter(folder: folder, model: "synthetic", hooks: hooks, dtype: dtype,
                                               contextLength: 0, shardRows: shardRows, overwrite: overwrite, info: info)
        try SafeTensors.write([TensorToWrite(name: "dictionary", matrix: data.dictionary)],
                              to: (writer.workingFolder as NSString).appendingPathComponent(groundTruthFile), metadata: info)
        var done = 0
        while done < tokens {
            if context.isCancelled {
                try writer.finish(complete: false)
                throw Cancelled()
            }
            let n = min(4096, tokens - done)
            try writer.append(try data.nextBatch(rows: n), tokenIds: [Int32](repeating: -1, count: n))
            done += n
            context.report(ProgressUpdate(task: "synth", done: done, total: tokens, unit: "tokens"))
        }
        try writer.finish()
        return try ActivationStore(path: folder)
    }

    /// The true dictionary of a synthetic store, or nil for a store without one.
    public func groundTruthDictionary() throws -> Matrix? {
        let path = (folder as NSString).appendingPathComponent(Self.groundTruthFile)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw ActivationsError("store \(folder): \(error)") }
        let m = try file.matrix("dictionary")
        guard m.cols == dims[0] else {
            throw ActivationsError("store \(folder): ground-truth dictionary has d = \(m.cols) but the store's d is \(dims[0])")
        }
        return m
    }
}
