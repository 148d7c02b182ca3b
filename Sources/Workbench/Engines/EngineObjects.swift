import Activations
import Foundation
import GPT2
import SAE
import Tensor

// The session's wrappers around engine objects: each says how it shows itself (vars, REPL, Jupyter, JSON).

final class ModelObject: SessionObject {
    let model: GPT2Model
    let path: String
    /// Splice results already measured with this model (`splice`, `frontier`, `match`), reused while the SAE, its
    /// training steps, the corpus and the sizes are the same.
    let spliceCache = SpliceCache()
    init(model: GPT2Model, path: String) { self.model = model; self.path = path }

    var typeName: String { "model" }
    var summary: String {
        let c = model.config
        return "GPT-2 \(model.name): \(c.nLayer) layers, d_model \(c.nEmbd), \(c.nHead) heads, context \(c.nPositions)"
            + (model.tokenizer == nil ? ", no tokenizer" : "")
            + (model.processing == .none ? "" : ", processing=\(model.processing.rawValue)")
    }
    var descriptionTable: Table {
        let c = model.config
        return Table(columns: ["property", "value"], rows: [
            [.text("name"), .text(model.name)], [.text("path"), .text(path)],
            [.text("layers"), .number(Double(c.nLayer))], [.text("d_model"), .number(Double(c.nEmbd))],
            [.text("heads"), .number(Double(c.nHead))], [.text("context"), .number(Double(c.nPositions))],
            [.text("vocabulary"), .number(Double(c.vocabSize))],
            [.text("tokenizer"), .bool(model.tokenizer != nil)],
            [.text("processing"), .text(model.processing.rawValue)],
        ])
    }
    var json: JSON {
        let c = model.config
        return .object([("name", .string(model.name)), ("path", .string(path)), ("n_layer", .number(Double(c.nLayer))),
                        ("n_embd", .number(Double(c.nEmbd))), ("n_head", .number(Double(c.nHead))),
                        ("n_positions", .number(Double(c.nPositions))), ("vocab_size", .number(Double(c.vocabSize))),
                        ("tokenizer", .bool(model.tokenizer != nil))])
    }
}

final class CorpusObject: SessionObject {
    let corpus: Corpus
    init(corpus: Corpus) { self.corpus = corpus }

    var typeName: String { "corpus" }
    var kindName: String {
        switch corpus.kind {
        case .text: return "text file, split=\(corpus.split?.rawValue ?? "blank")"
        case .jsonl(let field): return "jsonl, field \"\(field)\""
        case .folder: return "folder of .txt, split=\(corpus.split?.rawValue ?? "file")"
        }
    }
    var summary: String { "\(corpus.path) (\(kindName)\(corpus.specialTokens ? ", special=true" : ""))" }
    var descriptionTable: Table {
        Table(columns: ["property", "value"], rows: [[.text("path"), .text(corpus.path)], [.text("kind"), .text(kindName)]])
    }
    var json: JSON { .object([("path", .string(corpus.path)), ("kind", .string(kindName))]) }
}

final class StoreObject: SessionObject {
    let store: ActivationStore
    init(store: ActivationStore) { self.store = store }

    /// The ground-truth features of a synthetic store ([features, d]), when the store has them.
    lazy var groundTruth: Matrix? = try? store.groundTruthDictionary()

    var typeName: String { "store" }
    var summary: String {
        "\(store.tokenCount) tokens × \(store.layerCount) layer\(store.layerCount == 1 ? "" : "s") (d \(Set(store.dims).sorted().map(String.init).joined(separator: "/"))), \(store.dtype.rawValue), \(store.folder)\(store.manifest.complete ? "" : " (INCOMPLETE: its writing was interrupted)")"
    }
    var descriptionTable: Table {
        Table(columns: ["layer", "hook", "d", "count", "mean_norm"], rows: store.hooks.enumerated().map { i, hook in
            let stats = i < store.normStats.count ? store.normStats[i] : NormStats()
            return [.number(Double(hook.layer)), .text(hook.name), .number(Double(hook.d)), .number(Double(stats.count)), .number(stats.mean)]
        })
    }
    var json: JSON {
        .object([("path", .string(store.folder)), ("model", .string(store.manifest.model)),
                 ("tokens", .number(Double(store.tokenCount))), ("context", .number(Double(store.contextLength))),
                 ("dtype", .string(store.dtype.rawValue)),
                 ("hooks", .array(store.hooks.map { .object([("name", .string($0.name)), ("layer", .number(Double($0.layer))), ("d", .number(Double($0.d)))]) })),
                 ("synthetic", .bool(groundTruth != nil)), ("complete", .bool(store.manifest.complete))])
    }
}

final class SAEObject: SessionObject, SaveableObject {
    let group: SAEGroup
    /// The store the group was made for, and the shuffled reader training continues from (so `train` resumes the
    /// same stream after an interruption instead of replaying the first batches).
    var store: StoreObject?
    var reader: ShuffledBatchReader?
    var lastEval: [LayerMetrics]?
    /// The settings of the latest `train` call, which `export` writes into a SAELens training script.
    var lastTraining: TrainingSettings?
    /// The cfg's `model_from_pretrained_kwargs` flags of a loaded SAELens SAE (kept, and written back on save).
    var loadedModelKwargs: [String: Bool]?
    init(group: SAEGroup, store: StoreObject?, modelKwargs: [String: Bool]? = nil) {
        self.group = group; self.store = store; self.loadedModelKwargs = modelKwargs
    }

    /// The model processing the SAE expects: its cfg's, or that of the store it was trained on.
    var modelFromPretrainedKwargs: [String: Bool]? {
        loadedModelKwargs ?? store.flatMap { Engines.processing(of: $0.store) }?.flags
    }

    var typeName: String { "sae" }
    var architecture: String { group.saes.first?.config.architecture.rawValue ?? "?" }
    var summary: String {
        let first = group.saes[0].config
        return "\(group.count) × \(architecture) \(first.dIn)→\(first.dSAE), \(Self.settings(first)), trained \(group.stepsTrained) steps"
    }
    /// The architecture's own settings as `sae` takes them (alpha for the L1 kinds, k for TopK …).
    static func settings(_ c: SAEConfig) -> String {
        c.architecture.options.compactMap { o -> String? in
            switch o.name {
            case "alpha": return "alpha \(formatNumber(decimal(c.alpha)))"
            case "sigma", "noise", "beta": return nil
            default: return c.options[o.name].map { "\(o.name) \(formatNumber(decimal(Float($0))))" }
            }
        }.joined(separator: ", ")
    }

    var descriptionTable: Table {
        Table(columns: ["layer", "hook", "architecture", "d_in", "d_sae", "alpha", "sigma", "steps"], rows: group.saes.enumerated().map { i, sae in
            let c = sae.config
            return [.number(Double(group.layers[i])), c.hookName.map(Cell.text) ?? .null, .text(c.architecture.rawValue),
                    .number(Double(c.dIn)), .number(Double(c.dSAE)), .number(decimal(c.alpha)), .number(decimal(c.sigma)),
                    .number(Double(sae.optimizerSteps))]
        })
    }
    var json: JSON {
        .object([("architecture", .string(architecture)), ("steps", .number(Double(group.stepsTrained))),
                 ("layers", .array(group.saes.enumerated().map { i, sae in
                     let c = sae.config
                     return .object([("layer", .number(Double(group.layers[i]))), ("hook", c.hookName.map(JSON.string) ?? .null),
                                     ("d_in", .number(Double(c.dIn))), ("d_sae", .number(Double(c.dSAE))),
                                     ("alpha", .number(decimal(c.alpha))), ("sigma", .number(decimal(c.sigma))),
                                     ("noise", .string(c.noise.rawValue)), ("mse", .string(c.mse.rawValue)),
                                     ("beta", .string(c.beta.rawValue))])
                 }))])
    }

    func save(to path: String, call: Call) throws {
        try SAELensIO.save(group, to: path)
        if let kwargs = modelFromPretrainedKwargs { try Engines.writeModelFromPretrainedKwargs(kwargs, under: path) }
    }
}

/// What a `train` call was given (the group itself keeps only its weights, steps and log).
struct TrainingSettings {
    var batch: Int
    var lr: Double
    var warmup: Int
}

/// The result of `run MODEL "TEXT"`.
final class RunObject: SessionObject {
    let tokens: [Int32]
    let ceLoss: Double
    let top: [[Int32]]
    let tokenText: (Int32) -> String
    init(tokens: [Int32], ceLoss: Double, top: [[Int32]], tokenText: @escaping (Int32) -> String) {
        self.tokens = tokens; self.ceLoss = ceLoss; self.top = top; self.tokenText = tokenText
    }

    var typeName: String { "run" }
    var summary: String { "\(tokens.count) tokens, CE loss \(formatTableNumber(ceLoss))" }
    var descriptionTable: Table {
        Table(columns: ["position", "id", "token", "top next tokens"], rows: tokens.enumerated().map { i, id in
            [.number(Double(i)), .number(Double(id)), .text(tokenText(id)),
             // tokenString already shows control characters as escapes; quoteString would escape them twice.
             .text(top[i].map { "\"" + tokenText($0) + "\"" }.joined(separator: " "))]
        })
    }
    var json: JSON {
        .object([("tokens", .array(tokens.map { .number(Double($0)) })), ("ce_loss", .number(ceLoss)),
                 ("top", .array(top.map { .array($0.map { .number(Double($0)) }) }))])
    }
}

/// A Float as the Double its shortest decimal form names (1e-6 rather than 9.999999974752427e-07).
func decimal(_ value: Float) -> Double { Double(value.description) ?? Double(value) }
