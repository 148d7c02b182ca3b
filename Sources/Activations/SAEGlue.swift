import Foundation
import Tensor
import SAE
import GPT2

/// The shuffled reader is the trainer's batch source: one matrix per layer, the same tokens in every layer.
extension ShuffledBatchReader: BatchSource {}

extension SpliceTarget {
    /// The hook an SAE of a group splices into: its config's `hookName`, else `blocks.L.<defaultKind>` with L its
    /// layer (e.g. defaultKind "hook_mlp_out").
    public static func hook(of sae: SAE, layer: Int, defaultKind: String = "hook_mlp_out") -> String {
        sae.config.hookName ?? "blocks.\(layer).\(defaultKind)"
    }

    /// The target splicing `sae`'s reconstruction into `hook`: decode(encode(x)), as `SAE.reconstruct`, with the
    /// codes' nonzero count per row.
    public static func target(for sae: SAE, hook: String) -> SpliceTarget {
        SpliceTarget(hook: hook) { x in
            let codes = try sae.encode(x)
            let m = codes.cols
            let active = codes.data.withUnsafeBufferPointer { c in
                (0..<codes.rows).map { r in (0..<m).reduce(0) { $0 + (c[r * m + $1] != 0 ? 1 : 0) } }
            }
            // An SAE that normalizes its input rows decodes in its own scale: only `reconstruct` undoes that.
            let reconstruction = sae.config.normalization.transformsRows ? try sae.reconstruct(x) : try sae.decode(codes)
            return (reconstruction, active)
        }
    }
}

extension TopActivations {
    /// Top-activating tokens of an SAE's features over the store hook it was trained on.
    public static func scan(store: ActivationStore, hook: Int, sae: SAE, features: [Int]? = nil,
                            options: Options = Options(), context: WorkContext = .silent) throws -> [FeatureActivationSummary] {
        guard sae.dIn == store.hooks[hook].d else {
            throw ActivationsError("top-k: the SAE takes \(sae.dIn) inputs but store hook \(store.hooks[hook].name) has d = \(store.hooks[hook].d)")
        }
        if let features, features.contains(where: { $0 < 0 || $0 >= sae.dSAE }) {
            throw ActivationsError("top-k: features \(features.filter { $0 < 0 || $0 >= sae.dSAE }) outside 0..<\(sae.dSAE)")
        }
        // With noise in evaluation only the SAE's own seeded encoder gives its numbers.
        guard let encoder = try ScanEncoder(sae: sae, features: features) else {
            return try scan(store: store, hook: hook, features: features, options: options, context: context,
                            rankBy: nil, encode: { try sae.encode($0) })
        }
        let columns = encoder.columns.count == sae.dSAE ? nil : encoder.columns
        return try scan(store: store, hook: hook, features: features, options: options, context: context) { x, rows, consume in
            let (codes, keys) = encoder.encode(x, rows: rows)
            try consume(EncodedChunk(codes: codes, keys: keys, columns: columns, width: encoder.columns.count))
        }
    }

    /// The SAE's codes without its reconstruction (the architecture's own activation, one GEMM; see
    /// `SAE.codesOnlyEncoder`). Nil when evaluation uses noise: then only the SAE's own seeded encoder gives its numbers.
    static func codesOnlyEncoder(for sae: SAE) -> ((Matrix) throws -> Matrix)? { sae.codesOnlyEncoder() }
}

extension LogitLens {
    /// Feature `feature`'s decoder direction (row of W_dec [d_sae, d_in]) through the model's unembedding.
    public static func compute(model: GPT2Model, sae: SAE, feature: Int, k: Int = 10,
                               throughLayerNormScale: Bool = true) throws -> Result {
        guard feature >= 0 && feature < sae.dSAE else {
            throw ActivationsError("logit lens: feature \(feature) outside 0..<\(sae.dSAE)")
        }
        return try compute(model: model, direction: sae.W_dec.row(feature), k: k, throughLayerNormScale: throughLayerNormScale)
    }
}

/// Each feature's firing rate and its mean activation where it fires, over the first tokens of a store hook in the
/// shuffled reader's order (seed 0), encoded a chunk at a time: no [tokens, d_sae] matrix (10k tokens at 24576
/// features would be a gigabyte), and the scans' encoder (one GEMM, no reconstruction) unless the evaluation draws
/// noise, when the SAE's own seeded encoder gives the codes.
public enum FeatureStatistics {
    public struct Result: Sendable {
        public var tokens: Int
        public var density: [Double]
        public var meanActivation: [Double]
    }

    public static func measure(store: ActivationStore, hook: Int, sae: SAE, tokens: Int, chunkRows: Int = 1024,
                               context: WorkContext = .silent) throws -> Result {
        guard store.hooks.indices.contains(hook) else {
            throw ActivationsError("feature statistics: the store has no hook index \(hook) (it has \(store.hooks.count))")
        }
        guard sae.dIn == store.hooks[hook].d else {
            throw ActivationsError("feature statistics: the SAE takes \(sae.dIn) inputs but store hook \(store.hooks[hook].name) has d = \(store.hooks[hook].d)")
        }
        let reader = try ShuffledBatchReader(store: store, hooks: [hook], seed: 0)
        let total = min(max(tokens, 0), reader.rowsPerEpoch)
        let m = sae.dSAE
        var active = [Double](repeating: 0, count: m), sum = [Double](repeating: 0, count: m)
        let encoder = try ScanEncoder(sae: sae)
        var rng = RNG(seed: sae.config.seed &+ 0x5EED)
        var done = 0
        while done < total {
            try context.checkCancelled()
            let rows = min(max(chunkRows, 1), total - done)
            let x = try reader.nextBatch(rows: rows)[0]
            let add = { (codes: UnsafePointer<Float>) in
                active.withUnsafeMutableBufferPointer { a in sum.withUnsafeMutableBufferPointer { s in
                    let ap = a.baseAddress!, sp = s.baseAddress!
                    // Workers own column ranges, so no two write one feature's sums.
                    let workers = Parallel.workers(forWork: rows * m)
                    Parallel.run(workers) { w in
                        let columns = Parallel.slice(m, part: w, of: workers)
                        for r in 0..<rows {
                            let row = codes + r * m
                            for f in columns where row[f] > 0 { ap[f] += 1; sp[f] += Double(row[f]) }
                        }
                    }
                } }
            }
            if let encoder {
                x.data.withUnsafeBufferPointer { add(encoder.encode($0.baseAddress!, rows: rows).codes) }
            } else {
                let codes = try sae.encode(x, noise: sae.config.noiseInEvaluation, rng: &rng)
                codes.data.withUnsafeBufferPointer { add($0.baseAddress!) }
            }
            done += rows
            context.report(ProgressUpdate(task: "features", done: done, total: total, unit: "tokens"))
        }
        return Result(tokens: total, density: active.map { total > 0 ? $0 / Double(total) : 0 },
                      meanActivation: zip(sum, active).map { $1 > 0 ? $0 / $1 : 0 })
    }
}
