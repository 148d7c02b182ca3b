import Activations
import Foundation
import GPT2
import SAE
import Tensor

// sae, train, eval, compare, splice: adapters over SAE (group, trainer, evaluator) and Activations (reader, splice).

extension Engines {
    /// What `sae` and `sweep` read from a call: the store's hooks for the chosen layers, the expansion, and a
    /// template config holding every architecture option given except `gridOption` (the one a sweep varies).
    struct SAESpec {
        let storeObject: StoreObject
        let layers: [Int]
        let hookIndices: [Int]
        let expansion: Int
        let architecture: SAEArchitecture
        var template: SAEConfig
        let scaled: Bool
        let seed: Int

        var store: ActivationStore { storeObject.store }
        var dims: [Int] { hookIndices.map { store.hooks[$0].d } }
        var layerMeanNorms: [Float] { hookIndices.map { Float(store.normStats[$0].mean) } }
        var hookNames: [String] { hookIndices.map { store.hooks[$0].name } }
    }

    /// `copies` SAEs per layer are checked against the memory budget (a sweep's grid size), the error pointing at
    /// `copiesOption` when there is more than one.
    static func saeSpec(_ call: Call, gridOption: String? = nil, copies: Int = 1, copiesOption: String = "expansion") throws -> SAESpec {
        guard case .string(let kind) = call.arguments[0] else {
            throw call.error(atArgument: 0, "expected one of \(SAERegistry.names.joined(separator: ", "))")
        }
        let storeObject = try call.object(1, as: StoreObject.self)
        let store = storeObject.store
        let available = store.hooks.map(\.layer)
        let layers = call.layers("layers") ?? available
        var hookIndices: [Int] = []
        for layer in layers {
            guard let index = store.hooks.firstIndex(where: { $0.layer == layer }) else {
                throw call.error(atOption: "layers", "the store has no layer \(layer); its layers are \(available.map(String.init).joined(separator: ", "))")
            }
            hookIndices.append(index)
        }
        let expansionValue = try call.requiredNumber("expansion")
        guard let expansion = exactInt(expansionValue), expansion >= 1 else {
            throw call.error(atOption: "expansion", "expansion must be a whole number ≥ 1, found \(formatNumber(expansionValue))")
        }
        let squaredWidths = hookIndices.reduce(0) { $0 + store.hooks[$1].d * store.hooks[$1].d }
        // Parameters, gradients and both Adam moments: 4 copies of W_enc and W_dec.
        let what = copies == 1 ? "the SAE group's weights, gradients and Adam state"
            : "the sweep's \(copies) SAE groups' weights, gradients and Adam state"
        try checkMemory(call, option: copies == 1 ? "expansion" : copiesOption, [squaredWidths, expansion, 8, copies],
                        bytesEach: 4, what: what)
        let architecture: SAEArchitecture
        do { architecture = try SAERegistry.architecture(named: kind) } catch {
            throw call.error(atArgument: 0, "\(error)")
        }
        let mse = MSEMode(rawValue: try call.requiredString("mse")) ?? .sum
        let seed = call.integer("seed") ?? call.session.settings.seed
        var template = SAEConfig(architecture: architecture, dIn: 1, dSAE: 1, alpha: .nan, mse: mse, seed: UInt64(max(0, seed)),
                                 modelName: store.manifest.model)
        // The declaration refused options of other kinds (each architecture option applies only to its kinds).
        for option in architecture.options.map(\.name) where call.has(option) && option != gridOption {
            let setting: SAEOptionSetting
            if let w = call.string(option) { setting = .word(w) }
            else if let v = call.number(option) { setting = .number(v) }
            else if case .string(let w)? = call.option(option) { setting = .word(w) }
            else { throw call.error(atOption: option, "\(option) needs a value") }
            do { try architecture.set(option, setting, in: &template) } catch {
                throw call.error(atOption: option, "\(error)")
            }
        }
        let scaled = try call.requiredString("init") == "scaled"
        if scaled && architecture != .nsae {
            throw call.error(atOption: "init", "init=scaled is for nsae: the \(architecture.name) SAE keeps unit-norm decoder rows")
        }
        return SAESpec(storeObject: storeObject, layers: layers, hookIndices: hookIndices, expansion: expansion,
                       architecture: architecture, template: template, scaled: scaled, seed: seed)
    }

    /// A fresh group from the spec's template (init=scaled applied).
    static func makeGroup(_ spec: SAESpec, template: SAEConfig) throws -> SAEGroup {
        let group = try SAEGroup.make(template: template, dims: spec.dims, expansion: spec.expansion,
                                      layerMeanNorms: spec.layerMeanNorms, layers: spec.layers, hookNames: spec.hookNames)
        if spec.scaled { try applyScaledInitialization(group, spec) }
        return group
    }

    static func applyScaledInitialization(_ group: SAEGroup, _ spec: SAESpec) throws {
        let store = spec.store, hookIndices = spec.hookIndices
        try group.scaleToInputNorms(spec.layerMeanNorms)
        // b_dec starts at the data mean (over the first non-BOS rows), for the same reason: Adam would need
        // thousands of steps to walk it there at the scale of a high-norm layer.
        let rows = 0..<min(store.tokenCount, 16_384)
        let keep = try store.bosMask(rows).enumerated().filter { !$0.element }.map(\.offset)
        try group.initializeDecoderBiasFromMean(try hookIndices.map { hook in
            let all = try store.matrix(hook: hook, rows: rows)
            var sample = Matrix(rows: keep.count, cols: all.cols)
            for (i, r) in keep.enumerated() { sample.setRow(i, all.row(r)) }
            return sample
        })
    }

    static func makeSAE(_ call: Call) throws -> Value {
        let spec = try saeSpec(call)
        return .object(SAEObject(group: try makeGroup(spec, template: spec.template), store: spec.storeObject))
    }

    /// The store hook each SAE of the group reads: by hook name when the store has it, else by layer number.
    static func hookIndices(_ sae: SAEObject, _ store: ActivationStore, _ call: Call, argument: Int) throws -> [Int] {
        try sae.group.saes.enumerated().map { i, s in
            let layer = sae.group.layers[i]
            let index = s.config.hookName.flatMap { name in store.hooks.firstIndex { $0.name == name } }
                ?? store.hooks.firstIndex { $0.layer == layer }
            guard let index else {
                throw call.error(atArgument: argument, "the store has no hook for the SAE of layer \(layer) (its hooks: \(store.hookNames.joined(separator: ", ")))")
            }
            guard store.hooks[index].d == s.dIn else {
                throw call.error(atArgument: argument, "layer \(layer): the SAE takes d_in \(s.dIn) but the store's \(store.hooks[index].name) has d \(store.hooks[index].d)")
            }
            return index
        }
    }

    /// What `train` reads from a call, for a group or a sweep (`saes`: every SAE the step will run;
    /// `trained`: the steps it has taken, for until=).
    struct TrainingRequest {
        let batch: Int
        let steps: Int
        let lr: Double
        let optimizer: AdamConfig
        let logEvery: Int
        let resampleEvery: Int?
    }

    static func trainingRequest(_ call: Call, saes: [SAE], trained: Int, what: String) throws -> TrainingRequest {
        let batch = try positive(call, "batch")
        // The step's buffers: a batch of inputs and reconstructions, and pre-activations, codes and their gradient.
        let rowFloats = saes.reduce(0) { $0 + 2 * $1.dIn + 3 * $1.dSAE }
        try checkMemory(call, option: "batch", [batch, rowFloats], bytesEach: 4, what: "a training batch of \(batch) rows")
        // The declaration's group makes exactly one of steps=, tokens= and until= present.
        let steps: Int
        if let s = call.integer("steps") {
            steps = s
        } else if let t = call.integer("tokens") {
            guard t >= 1 else { throw call.error(atOption: "tokens", "tokens must be at least 1, found \(t)") }
            steps = (t + batch - 1) / batch
        } else {
            let until = try call.requiredInteger("until")
            guard until > trained else {
                throw call.error(atOption: "until", "the \(what) has \(trained) steps already, so until=\(until) leaves nothing to train; give a larger until= or steps=N for that many more")
            }
            steps = until - trained
        }
        guard steps >= 1 else { throw call.error("train needs at least one step (steps=\(steps))") }
        let lr = try call.requiredNumber("lr")
        let optimizer = AdamConfig(lr: Float(lr), warmupSteps: try call.requiredInteger("warmup"))
        let logEvery = try positive(call, "log_every")
        let resampleEvery = call.has("resample_every") ? try positive(call, "resample_every") : nil
        return TrainingRequest(batch: batch, steps: steps, lr: lr, optimizer: optimizer, logEvery: logEvery, resampleEvery: resampleEvery)
    }

    static func train(_ call: Call) throws -> Value {
        if case .object(let o) = call.arguments[0], o is SweepObject { return try trainSweep(call) }
        let sae = try call.object(0, as: SAEObject.self)
        let storeObject = try call.object(1, as: StoreObject.self)
        let store = storeObject.store
        let request = try trainingRequest(call, saes: sae.group.saes, trained: sae.group.stepsTrained, what: "group")
        let (batch, steps, lr, optimizer, logEvery, resampleEvery) = (request.batch, request.steps, request.lr, request.optimizer,
                                                                      request.logEvery, request.resampleEvery)
        let hooks = try hookIndices(sae, store, call, argument: 1)
        // Keep one reader per (group, store) so a second `train` continues the shuffled stream.
        if sae.reader == nil || sae.reader!.store !== store || sae.reader!.hooks != hooks {
            sae.reader = try ShuffledBatchReader(store: store, hooks: hooks, seed: UInt64(max(0, call.session.settings.seed)))
        }
        if sae.store == nil { sae.store = storeObject }
        sae.lastTraining = TrainingSettings(batch: batch, lr: lr, warmup: optimizer.warmupSteps)
        let context = call.work("train")
        defer { call.finish(context) }
        let log = try GroupTrainer.train(sae.group, source: sae.reader!, steps: steps, batchSize: batch, optimizer: optimizer,
                                         logEvery: logEvery, checkpointPath: call.string("checkpoint"),
                                         resampleEvery: resampleEvery, context: context)
        call.finish(context)
        let table = Table(columns: TrainingLog.columns, rows: log.table.map { $0.map(Cell.number) })
        if Set(log.rows.map(\.step)).count >= 2 { call.display(.figure(trainingCurves(sae.group.log))) }
        return .table(table)
    }

    /// Loss per layer against step, over the group's whole log.
    static func trainingCurves(_ log: TrainingLog) -> Figure {
        let layers = Array(Set(log.rows.map(\.layer))).sorted()
        let series = layers.map { layer -> LineSeries in
            let rows = log.rows.filter { $0.layer == layer }
            return LineSeries(label: "layer \(layer)", x: rows.map { Double($0.step) }, y: rows.map(\.loss))
        }
        return Figure(title: "training loss", xLabel: "step", yLabel: "loss", logY: true, kind: .line(series: series))
    }

    static func evaluate(_ sae: SAEObject, on store: ActivationStore, tokens: Int?, call: Call, argument: Int) throws -> [LayerMetrics] {
        let hooks = try hookIndices(sae, store, call, argument: argument)
        let reader = try ShuffledBatchReader(store: store, hooks: hooks, seed: 0)
        let available = reader.rowsPerEpoch
        guard available > 0 else { throw call.error(atArgument: argument, "the store has no non-BOS tokens to evaluate on") }
        let n = min(tokens ?? available, available)
        let context = call.work("eval")
        defer { call.finish(context) }
        let metrics = try Evaluator.evaluate(sae.group, source: reader, tokens: n, context: context)
        sae.lastEval = metrics
        return metrics
    }

    static let evalColumns = ["layer", "l0", "l1", "mse", "explained_variance", "suppression", "dead_fraction", "alive"]

    static func evalRow(_ m: LayerMetrics) -> [Cell] {
        [.number(Double(m.layer)), .number(m.l0), .number(m.l1), .number(m.mse), .number(m.explainedVariance),
         .number(m.suppression), .number(m.deadFraction), .number(Double(m.aliveCount))]
    }

    static func eval(_ call: Call) throws -> Value {
        if case .object(let o) = call.arguments[0], o is SweepObject { return try evalSweep(call) }
        let sae = try call.object(0, as: SAEObject.self)
        let store = try call.object(1, as: StoreObject.self).store
        if let t = call.integer("tokens"), t < 1 { throw call.error(atOption: "tokens", "tokens must be at least 1") }
        let metrics = try evaluate(sae, on: store, tokens: call.integer("tokens"), call: call, argument: 1)
        return .table(Table(columns: evalColumns, rows: metrics.map(evalRow)))
    }

    /// The names the user wrote for the positional arguments (compare labels its rows with them).
    static func argumentNames(_ call: Call) -> [String] {
        guard case .command(_, let arguments, _) = call.statement.body else { return [] }
        return arguments.map { if case .name(let n) = $0.value { return n } else { return "?" } }
    }

    static func compare(_ call: Call) throws -> Value {
        let names = argumentNames(call)
        let shared = call.option("store").flatMap { value -> StoreObject? in
            if case .object(let o) = value { return o as? StoreObject } else { return nil }
        }
        var rows: [[Cell]] = []
        for i in call.arguments.indices {
            let sae = try call.object(i, as: SAEObject.self)
            guard let store = shared ?? sae.store else {
                throw call.error(atArgument: i, "`\(names[i])` has no store to evaluate on; give store=STORE")
            }
            let metrics = try evaluate(sae, on: store.store, tokens: call.integer("tokens"), call: call, argument: i)
            for m in metrics { rows.append([.text(names[i]), .text(sae.architecture)] + evalRow(m)) }
        }
        return .table(Table(columns: ["sae", "architecture"] + evalColumns, rows: rows))
    }

    static func splice(_ call: Call) throws -> Value {
        let sae = try call.object(0, as: SAEObject.self)
        let model = try call.object(1, as: ModelObject.self)
        let corpus = try call.object(2, as: CorpusObject.self)
        let all = try spliceWindows(call, model: model, corpus: corpus, store: sae.store, corpusArgument: 2)
        try checkSpliceWidths(sae, model: model, contextLength: all[0].tokens.count, call: call, argument: 0)
        try checkProcessing(sae, against: model.model.processing, what: "the model", call: call)
        let results = try spliceResults(call, model: model, corpus: corpus, windows: all, targets: sae.group.saes.enumerated().map { i, s in
            (s, SpliceTarget.hook(of: s, layer: sae.group.layers[i]))
        })
        return .table(Table(columns: ["layer", "hook", "ce_clean", "ce_zero", "ce_recon", "score", "kl_zero", "kl_recon", "kl_score"],
                            rows: results.enumerated().map { i, r in
            [.number(Double(sae.group.layers[i])), .text(r.hook), .number(r.ceClean), .number(r.ceZero), .number(r.ceRecon),
             .number(r.score), .number(r.klZero), .number(r.klRecon), .number(r.klScore)]
        }))
    }
}
