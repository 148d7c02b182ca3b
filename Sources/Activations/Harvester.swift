import Foundation
import Tensor
import GPT2

/// Runs GPT-2 over context windows and writes one hook kind at a set of layers (or one model-level hook) into a
/// store, each at its own width (hook_z as n_heads·d_head, mlp.hook_post as 4·d_model, hook_scale as 1). Body only:
/// no unembedding, and the forward stops after the last captured hook.
public enum Harvester {
    public struct Options: Sendable {
        /// The per-block hook kind captured at every layer of `layers`.
        public var kind: HookPoint.Kind = .mlpOut
        public var layers: [Int]
        /// A model-level hook (hook_embed, hook_pos_embed, ln_final.*) harvested instead of `kind` at `layers`; its
        /// store layer is 0 for the embeddings and the last block for ln_final.
        public var modelHook: HookPoint? = nil
        public var contextLength = 128
        public var batchSize = 8
        public var dtype: StoreDType = .f32
        /// Stop after the first ⌊maxTokens / contextLength⌋ windows (nil: the whole corpus).
        public var maxTokens: Int? = nil
        public var shardRows: Int? = nil
        public var overwrite = false
        public init(layers: [Int]) { self.layers = layers }
    }

    /// Tokenizes `corpus` with the model's tokenizer into windows (design §5) and harvests them into `folder`.
    @discardableResult
    public static func harvest(model: GPT2Model, corpus: Corpus, to folder: String, options: Options,
                               context: WorkContext = .silent) throws -> ActivationStore {
        guard let tokenizer = model.tokenizer else {
            throw ActivationsError("harvest: the model \(model.name) has no tokenizer; load one to window a text corpus")
        }
        var windows = try ContextWindows(corpus: corpus, contextLength: options.contextLength,
                                         maxTokens: options.maxTokens,
                                         tokenize: { [special = corpus.specialTokens] in tokenizer.encode($0, special: special) })
        return try harvest(model: model, windows: &windows, to: folder, options: options,
                           info: ["corpus": corpus.path], context: context)
    }

    /// Harvests the windows `windows` still has into a new store at `folder`. On cancellation the rows of every
    /// finished batch are written, the manifest says `complete: false`, and `Cancelled` is thrown.
    @discardableResult
    public static func harvest(model: GPT2Model, windows: inout ContextWindows, to folder: String, options: Options,
                               info: [String: String] = [:], context: WorkContext = .silent) throws -> ActivationStore {
        guard windows.contextLength == options.contextLength else {
            throw ActivationsError("harvest: windows have length \(windows.contextLength) but the options say \(options.contextLength)")
        }
        let total = windows.maxWindows.map { $0 * options.contextLength } ?? 0
        return try harvest(model: model, nextWindows: { try windows.next(count: $0) }, totalTokens: total, to: folder,
                           options: options, info: info, context: context)
    }

    /// Harvests windows given in memory (each exactly `options.contextLength` tokens; BOS is not added here).
    @discardableResult
    public static func harvest(model: GPT2Model, windows: [TokenWindow], to folder: String, options: Options,
                               info: [String: String] = [:], context: WorkContext = .silent) throws -> ActivationStore {
        if let bad = windows.firstIndex(where: { $0.tokens.count != options.contextLength }) {
            throw ActivationsError("harvest: window \(bad) has \(windows[bad].tokens.count) tokens, the context length is \(options.contextLength)")
        }
        var next = 0
        return try harvest(model: model, nextWindows: { count in
            let batch = Array(windows[next..<min(windows.count, next + count)])
            next += batch.count
            return batch
        }, totalTokens: windows.count * options.contextLength, to: folder, options: options, info: info, context: context)
    }

    private static func harvest(model: GPT2Model, nextWindows: (Int) throws -> [TokenWindow], totalTokens total: Int,
                                to folder: String, options: Options, info: [String: String],
                                context: WorkContext) throws -> ActivationStore {
        let nLayer = model.config.nLayer
        let points: [HookPoint]
        if let hook = options.modelHook {
            guard hook.layer == nil else { throw ActivationsError("harvest: \(hook.name) is a block hook; give its kind and layers") }
            points = [hook]
        } else {
            let layers = options.layers
            guard !layers.isEmpty else { throw ActivationsError("harvest: no layers given") }
            guard Set(layers).count == layers.count else { throw ActivationsError("harvest: layers \(layers) repeat") }
            if let bad = layers.first(where: { $0 < 0 || $0 >= nLayer }) {
                throw ActivationsError("harvest: layer \(bad) is out of range, the model has \(nLayer) layers (0…\(nLayer - 1))")
            }
            if options.kind == .attnScores {
                throw ActivationsError("harvest: attn.hook_attn_scores holds −∞ at future keys and cannot be stored; harvest attn.hook_pattern, or capture the scores with a forward")
            }
            points = layers.sorted().map { .block($0, options.kind) }
        }
        guard options.contextLength <= model.config.nPositions else {
            throw ActivationsError("harvest: context length \(options.contextLength) exceeds the model's \(model.config.nPositions) positions")
        }
        guard options.batchSize >= 1 else { throw ActivationsError("harvest: batch size must be at least 1") }
        let names = points.map(\.name)
        let hooks = points.map { p in
            StoreHook(name: p.name, layer: p.layer ?? (p == .embed || p == .posEmbed ? 0 : nLayer - 1),
                      d: p.width(model.config, seqLen: options.contextLength))
        }
        if let maxTokens = options.maxTokens {
            // An upper bound (the corpus may end first), checked before anything is written.
            do {
                let bytes = try ResourceBudget.bytes([maxTokens, hooks.reduce(0) { $0 + $1.d }], bytesEach: options.dtype.byteSize, what: "tokens=\(maxTokens)")
                try ResourceBudget.checkDisk(bytes, at: folder, for: "harvest: a store of \(maxTokens) tokens × \(hooks.count) hook\(hooks.count == 1 ? "" : "s")")
            } catch { throw ActivationsError("\(error)") }
        }
        var storeInfo = info
        storeInfo["hook_kind"] = options.modelHook?.name ?? options.kind.rawValue
        storeInfo["processing"] = model.processing.rawValue
        let writer = try ActivationStoreWriter(folder: folder, model: model.name, hooks: hooks, dtype: options.dtype,
                                               contextLength: options.contextLength, shardRows: options.shardRows,
                                               overwrite: options.overwrite, info: storeInfo)
        let T = options.contextLength
        while true {
            if context.isCancelled {
                try writer.finish(complete: false)
                throw Cancelled()
            }
            let batch = try nextWindows(options.batchSize)
            if batch.isEmpty { break }
            let tokens = batch.flatMap(\.tokens)
            let result = try model.forward(tokens: tokens, batch: batch.count, seqLen: T, captures: Set(names), logits: false)
            let matrices = try names.map { name -> Matrix in
                guard let m = result.captures[name] else { throw ActivationsError("harvest: the forward pass returned no '\(name)'") }
                return m
            }
            try writer.append(matrices, tokenIds: tokens, documentIndex: batch.flatMap(\.documentIndex),
                              positions: batch.flatMap(\.position))
            context.report(ProgressUpdate(task: "harvest", done: writer.rowsWritten, total: total, unit: "tokens"))
        }
        guard writer.rowsWritten > 0 else {
            // The writer, dropped unfinished, removes its staging folder; `folder` was never touched.
            throw ActivationsError("harvest: the corpus gave no complete window of \(T) tokens")
        }
        try writer.finish()
        return try ActivationStore(path: folder)
    }
}
