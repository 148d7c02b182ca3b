import Activations
import Foundation
import GPT2
import SAE
import Tensor

// harvest, synth, stats: adapters over the activation store.

extension Engines {
    /// The same as `call.requiredInteger` / `call.requiredString`, for glue written before them.
    static func requiredInt(_ call: Call, _ name: String) throws -> Int { try call.requiredInteger(name) }
    static func requiredString(_ call: Call, _ name: String) throws -> String { try call.requiredString(name) }

    /// A whole-number option ≥ 1: as given, else its declared default, else `fallback` (a default the verb
    /// computes, e.g. from the store).
    static func positive(_ call: Call, _ name: String, default fallback: Int? = nil) throws -> Int {
        guard let value = call.integer(name) ?? fallback else { return try call.requiredInteger(name) }
        guard value >= 1 else { throw call.error(atOption: name, "\(name) must be at least 1, found \(value)") }
        return value
    }

    /// Refuses a size from a command that cannot be held in memory, naming the option and both figures.
    static func checkMemory(_ call: Call, option: String, _ counts: [Int], bytesEach: Int, what: String) throws {
        do {
            try ResourceBudget.checkMemory(try ResourceBudget.bytes(counts, bytesEach: bytesEach, what: what), for: what)
        } catch { throw call.error(atOption: option, "\(error)") }
    }

    /// Refuses a store that would not fit on the disk of `out` (the figure is an upper bound: the corpus may end first).
    static func checkStoreFits(_ call: Call, tokens: Int, dims: [Int], bytesEach: Int, at out: String) throws {
        do {
            let bytes = try ResourceBudget.bytes([tokens, dims.reduce(0, +)], bytesEach: bytesEach, what: "tokens=\(tokens)")
            try ResourceBudget.checkDisk(bytes, at: out, for: "a store of \(tokens) tokens × \(dims.count) layer\(dims.count == 1 ? "" : "s") of d \(Set(dims).sorted().map(String.init).joined(separator: "/"))")
        } catch { throw call.error(atOption: "tokens", "\(error)") }
    }

    static func harvest(_ call: Call) throws -> Value {
        let model = try call.object(0, as: ModelObject.self)
        let corpus = try call.object(1, as: CorpusObject.self)
        let out = try call.requiredString("out")
        let nLayer = model.model.config.nLayer
        var options = Harvester.Options(layers: [])
        let hook = try call.requiredString("hook")
        if HookPoint.namesItsLayer(hook) {
            let point: HookPoint
            do { point = try HookPoint.parse(hook, nLayer: nLayer) } catch { throw call.error(atOption: "hook", "\(error)") }
            switch point {
            case .block(let layer, let kind):
                if let given = call.layers("layers"), given != [layer] {
                    throw call.error(atOption: "layers", "hook=\(hook) names layer \(layer) itself; drop layers= or give the name within the block (hook=\(kind.rawValue) layers=…)")
                }
                options.kind = kind; options.layers = [layer]
            default:
                if call.has("layers") { throw call.error(atOption: "layers", "\(point.name) is not in a block; drop layers=") }
                options.modelHook = point
            }
        } else {
            guard let kind = HookPoint.Kind(name: hook) else {
                throw call.error(atOption: "hook", "unknown hook `\(hook)`; within a block: \(HookPoint.Kind.allCases.map(\.rawValue).joined(separator: ", ")) (or resid_pre, attn_out, resid_mid, mlp_out, resid_post); or a full name such as blocks.0.attn.hook_z, or hook_embed, hook_pos_embed, ln_final.hook_scale, ln_final.hook_normalized")
            }
            options.kind = kind
            options.layers = call.layers("layers") ?? Array(0..<nLayer)
            if let bad = options.layers.first(where: { $0 >= nLayer }) {
                throw call.error(atOption: "layers", "layer \(bad) does not exist: the model has layers 0..\(nLayer - 1)")
            }
        }
        options.contextLength = try positive(call, "context")
        guard options.contextLength <= model.model.config.nPositions else {
            throw call.error(atOption: "context", "context \(options.contextLength) exceeds the model's \(model.model.config.nPositions) positions")
        }
        options.maxTokens = try positive(call, "tokens")
        guard options.maxTokens! >= options.contextLength else {
            throw call.error(atOption: "tokens", "tokens=\(options.maxTokens!) is less than one context window of \(options.contextLength)")
        }
        options.batchSize = try positive(call, "batch")
        if case .string(let dtype)? = call.option("dtype") { options.dtype = dtype == "f16" ? .f16 : .f32 }
        options.overwrite = call.flag("overwrite")
        let context = call.work("harvest")
        defer { call.finish(context) }
        let store = try Harvester.harvest(model: model.model, corpus: corpus.corpus, to: out, options: options, context: context)
        return .object(StoreObject(store: store))
    }

    static func synth(_ call: Call) throws -> Value {
        let out = try call.requiredString("out")
        let layerCount = call.integer("layers")
        var norms = try call.requiredNumbers("norms")
        if let layerCount {
            guard layerCount >= 1 else { throw call.error(atOption: "layers", "layers must be at least 1") }
            if call.has("norms") {
                guard norms.count == layerCount else {
                    throw call.error(atOption: "layers", "layers=\(layerCount) but norms= lists \(norms.count) scales; give one norm per layer")
                }
            } else {
                norms = (0..<layerCount).map { pow(4, Double($0)) }
            }
        }
        let d = try positive(call, "d")
        let features = try positive(call, "features")
        let active = try call.requiredNumber("active")
        guard let activeCount = exactInt(active), activeCount >= 1, activeCount <= features else {
            throw call.error(atOption: "active", "active must be a whole number in 1...\(features), found \(formatNumber(active))")
        }
        let tokens = try positive(call, "tokens")
        let seed = call.integer("seed") ?? call.session.settings.seed
        try checkMemory(call, option: "features", [features, d], bytesEach: 4, what: "the ground-truth dictionary (features × d)")
        try checkStoreFits(call, tokens: tokens, dims: Array(repeating: d, count: norms.count), bytesEach: 4, at: out)
        let context = call.work("synth")
        defer { call.finish(context) }
        let data = try SyntheticData(d: d, features: features, active: activeCount, norms: norms.map { Float($0) },
                                     seed: UInt64(max(0, seed)))
        return .object(StoreObject(store: try ActivationStore.writeSynthetic(data, tokens: tokens, to: out,
                                                                             overwrite: call.flag("overwrite"), context: context)))
    }

    static func stats(_ call: Call) throws -> Value {
        let store = try call.object(0, as: StoreObject.self).store
        let rows = store.hooks.enumerated().map { i, hook -> [Cell] in
            let s = store.normStats[i]
            return [.number(Double(hook.layer)), .number(Double(s.count)), .number(s.mean), .number(s.std), .number(s.min), .number(s.max)]
        }
        var figure = normFigure(store)
        if let name = argumentNames(call).first, name != "?" { figure.title = "\(name): " + figure.title }
        call.display(.figure(figure))
        return .table(Table(columns: ["layer", "count", "mean", "std", "min", "max"], rows: rows))
    }

    /// Histograms of ‖x‖ per layer on a log10 axis, from the manifest's log-spaced norm histograms.
    static func normFigure(_ store: ActivationStore) -> Figure {
        let edges = NormStats.binEdges.map { log10($0) }
        let used = store.normStats.flatMap { $0.histogram.enumerated().filter { $0.element > 0 }.map(\.offset) }
        let lo = used.min() ?? 0, hi = (used.max() ?? (edges.count - 2)) + 1
        let series = store.hooks.enumerated().map { i, hook in
            HistogramSeries(label: "layer \(hook.layer)", counts: store.normStats[i].histogram[lo..<hi].map(Double.init))
        }
        return Figure(title: "activation norms ‖x‖ per layer (non-BOS)", xLabel: "log10 ‖x‖", yLabel: "tokens",
                      kind: .histogram(edges: Array(edges[lo...hi]), series: series))
    }
}
