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
