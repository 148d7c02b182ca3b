import Activations
import Foundation
import GPT2
import SAE
import Tensor

// frontier, match: sparsity–fidelity frontiers of sweeps (or of single groups, one point each) and their comparison
// at equal L0; adapters over SAE's Frontier math, the Evaluator and Activations' splice evaluation.

extension Engines {
    /// What a frontier plots against L0.
    enum FrontierMetric: String, CaseIterable {
        case explainedVariance = "explained_variance", mse, ceScore = "ce_score", klScore = "kl_score"
        /// Measured by splicing into a model (needs model= and corpus=), not on the store.
        var spliced: Bool { self == .ceScore || self == .klScore }
    }

    /// One curve: the name the user wrote and its SAE groups, each at one value of the grid option.
    struct FrontierSeries {
        let name: String
        let gridOption: String
        let values: [Double]
        /// One session object per group (its store, its processing flags), sharing the group's SAEs.
        let groups: [SAEObject]
        var layers: [Int] { groups[0].group.layers }

        func label(_ g: Int) -> String { "\(gridOption)=\(formatGridValue(values[g]))" }
    }

    /// One SAE's measured point: which curve and group, its layer, L0 and metric.
    struct FrontierMeasurement {
        let series: Int
        let group: Int
        let layer: Int
        let l0: Double
        let metric: Double
    }

    /// A plain group's value of its architecture's sparsity control (what a sweep of its kind varies).
    static func sparsityControl(of group: SAEGroup) -> (name: String, value: Double) {
        let config = group.saes[0].config
        let name = config.architecture.sparsityControl.name
        let value = name == "alpha" ? config.alpha : Float(config.options[name] ?? .nan)
        return (name, decimal(value))
    }

    /// The curve for positional argument `index`: a sweep, or a plain SAE group as a curve of one point.
    static func frontierSeries(_ call: Call, _ index: Int) throws -> FrontierSeries {
        let name = argumentNames(call)[safe: index] ?? "?"
        guard case .object(let object) = call.arguments[index] else {
            throw call.error(atArgument: index, "expected a sweep or an sae group here")
        }
        if let sweep = object as? SweepObject {
            return FrontierSeries(name: name, gridOption: sweep.sweep.gridOption, values: sweep.sweep.values,
                                  groups: sweep.sweep.groups.indices.map { sweep.groupObject($0) })
        }
        if let sae = object as? SAEObject {
            let control = sparsityControl(of: sae.group)
            return FrontierSeries(name: name, gridOption: control.name, values: [control.value], groups: [sae])
        }
        throw call.error(atArgument: index, "expected a sweep or an sae group here, but `\(name)` is a \(object.typeName)")
    }

    static func frontierMetric(_ call: Call) throws -> FrontierMetric {
        let text = call.string("metric") ?? FrontierMetric.explainedVariance.rawValue
        guard let metric = FrontierMetric(rawValue: text) else {
            throw call.error(atOption: "metric", "unknown metric `\(text)`; expected one of \(FrontierMetric.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return metric
    }

    /// The layers to measure: layer= (which every curve must have), else every layer of any curve.
    static func frontierLayers(_ call: Call, _ series: [FrontierSeries]) throws -> [Int] {
        guard let layer = call.integer("layer") else { return Array(Set(series.flatMap(\.layers))).sorted() }
        for s in series where !s.layers.contains(layer) {
            throw call.error(atOption: "layer", "layer \(layer) is not in `\(s.name)`; its layers are \(s.layers.map(String.init).joined(separator: ", "))")
        }
        return [layer]
    }

    /// Every SAE of every curve at `layers`, measured once: store metrics by one scan per store shared by all the
    /// groups on it, splice metrics by one splice evaluation (one clean forward per batch for all SAEs).
    static func measureFrontiers(_ call: Call, _ series: [FrontierSeries], metric: FrontierMetric,
                                 layers: [Int]) throws -> [FrontierMeasurement] {
        metric.spliced ? try measureSpliced(call, series, metric: metric, layers: layers)
            : try measureOnStores(call, series, metric: metric, layers: layers)
    }

    private static func measureOnStores(_ call: Call, _ series: [FrontierSeries], metric: FrontierMetric,
                                        layers: [Int]) throws -> [FrontierMeasurement] {
        let shared = call.option("store").flatMap { value -> StoreObject? in
            if case .object(let o) = value { return o as? StoreObject } else { return nil }
        }
        if let t = call.integer("tokens"), t < 1 { throw call.error(atOption: "tokens", "tokens must be at least 1") }
        // Groups by the store they are evaluated on, in argument order.
        var byStore: [(store: StoreObject, members: [(series: Int, group: Int)])] = []
        for (s, curve) in series.enumerated() {
            for (g, object) in curve.groups.enumerated() {
                guard let store = shared ?? object.store else {
                    throw call.error(atArgument: s, "`\(curve.name)` has no store to evaluate on; give store=STORE")
                }
                if let k = byStore.firstIndex(where: { $0.store === store }) { byStore[k].members.append((s, g)) }
                else { byStore.append((store, [(s, g)])) }
            }
        }
        var out: [FrontierMeasurement] = []
        for (store, members) in byStore {
            let metrics = try evaluateTogether(members.map { series[$0.series].groups[$0.group] }, on: store.store,
                                               tokens: call.integer("tokens"), call: call, argument: members[0].series)
            for (member, perLayer) in zip(members, metrics) {
                for m in perLayer where layers.contains(m.layer) {
                    out.append(FrontierMeasurement(series: member.series, group: member.group, layer: m.layer, l0: m.l0,
                                                   metric: metric == .mse ? m.mse : m.explainedVariance))
                }
            }
        }
        return out.sorted { ($0.series, $0.group, $0.layer) < ($1.series, $1.group, $1.layer) }
    }

    /// The eval metrics of several groups over the same tokens of one store, each batch read once and fed to every
    /// SAE (the groups of a sweep share their layers, so the reader is the one `eval` of any of them uses, and the
    /// numbers are `eval`'s).
    static func evaluateTogether(_ objects: [SAEObject], on store: ActivationStore, tokens: Int?, call: Call,
                                 argument: Int) throws -> [[LayerMetrics]] {
        let hooksPerGroup = try objects.map { try hookIndices($0, store, call, argument: argument) }
        var union: [Int] = []
        for hooks in hooksPerGroup { for h in hooks where !union.contains(h) { union.append(h) } }
        let reader = try ShuffledBatchReader(store: store, hooks: union, seed: 0)
        let available = reader.rowsPerEpoch
        guard available > 0 else { throw call.error(atArgument: argument, "the store has no non-BOS tokens to evaluate on") }
        let n = min(tokens ?? available, available)
        let accumulators = objects.map { object in
            object.group.saes.enumerated().map { MetricsAccumulator(sae: $1, layer: object.group.layers[$0]) }
        }
        let slots = hooksPerGroup.map { hooks in hooks.map { union.firstIndex(of: $0)! } }
        let context = call.work("eval")
        defer { call.finish(context) }
        let batchSize = 4096
        var done = 0
        while done < n {
            try context.checkCancelled()
            let rows = min(batchSize, n - done)
            let batch = try reader.nextBatch(rows: rows)
            for (g, group) in accumulators.enumerated() {
                for (i, accumulator) in group.enumerated() { try accumulator.add(batch[slots[g][i]]) }
            }
            done += rows
            context.report(ProgressUpdate(task: "eval", done: done, total: n, unit: "tokens"))
        }
        return try zip(objects, accumulators).map { object, group in
            let metrics = try group.map { try $0.result() }
            for (sae, m) in zip(object.group.saes, metrics) { sae.featureDensity = m.density.map { Float($0) } }
            object.lastEval = metrics
            return metrics
        }
    }

    private static func measureSpliced(_ call: Call, _ series: [FrontierSeries], metric: FrontierMetric,
                                       layers: [Int]) throws -> [FrontierMeasurement] {
        guard call.has("model"), call.has("corpus") else {
            throw call.error(atOption: call.has("model") ? "model" : call.has("corpus") ? "corpus" : "metric",
                             "metric=\(metric.rawValue) splices each SAE into a model: give model=MODEL and corpus=CORPUS (the text to run it on)")
        }
        guard case .object(let m)? = call.option("model"), let model = m as? ModelObject else {
            throw call.error(atOption: "model", "expected a model")
        }
        guard case .object(let c)? = call.option("corpus"), let corpus = c as? CorpusObject else {
            throw call.error(atOption: "corpus", "expected a corpus")
        }
        let firstStore = series.lazy.flatMap(\.groups).compactMap(\.store).first
        let windows = try spliceWindows(call, model: model, corpus: corpus, store: firstStore)
        var targets: [(sae: SAE, hook: String)] = []
        var owners: [(series: Int, group: Int, layer: Int)] = []
        for (s, curve) in series.enumerated() {
            for (g, object) in curve.groups.enumerated() {
                try checkSpliceWidths(object, model: model, contextLength: windows[0].tokens.count, call: call, argument: s)
                // The groups of a sweep share their processing flags: one warning per curve is enough.
                if g == 0 { try checkProcessing(object, against: model.model.processing, what: "the model", call: call) }
                for (i, sae) in object.group.saes.enumerated() where layers.contains(object.group.layers[i]) {
                    let layer = object.group.layers[i]
                    targets.append((sae, SpliceTarget.hook(of: sae, layer: layer)))
                    owners.append((s, g, layer))
                }
            }
        }
        let results = try spliceResults(call, model: model, corpus: corpus, windows: windows, targets: targets)
        return zip(owners, results).map { owner, r in
            FrontierMeasurement(series: owner.series, group: owner.group, layer: owner.layer, l0: r.l0 ?? .nan,
                                metric: metric == .ceScore ? r.score : r.klScore)
        }
    }

    /// Each target's splice result: from the model's cache when this SAE, at its current training step, was already
    /// spliced at this hook over the same windows; the others in one evaluation (one clean forward per batch for all).
    static func spliceResults(_ call: Call, model: ModelObject, corpus: CorpusObject, windows: [TokenWindow],
                              targets: [(sae: SAE, hook: String)]) throws -> [SpliceResult] {
        let setting = SpliceCache.Setting(corpus: ObjectIdentifier(corpus), windows: windows.count,
                                          context: windows[0].tokens.count, firstTokens: windows[0].tokens)
        var results = targets.map { model.spliceCache.result(for: $0.sae, hook: $0.hook, setting: setting) }
        let missing = results.indices.filter { results[$0] == nil }
        if !missing.isEmpty {
            let context = call.work("splice")
            defer { call.finish(context) }
            let fresh = try SpliceEvaluator.evaluate(model: model.model, targets: missing.map {
                SpliceTarget.target(for: targets[$0].sae, hook: targets[$0].hook)
            }, windows: windows, context: context)
            for (i, r) in zip(missing, fresh) {
                results[i] = r
                model.spliceCache.store(r, for: targets[i].sae, hook: targets[i].hook, setting: setting)
            }
        }
        return results.map { $0! }
    }

    /// The corpus's context windows for a splice: context= (default: the store's context, else 128), at most
    /// tokens= (default 10k) tokens, checked against the model.
    static func spliceWindows(_ call: Call, model: ModelObject, corpus: CorpusObject, store: StoreObject?,
                              corpusArgument: Int? = nil) throws -> [TokenWindow] {
        let tokenizer = try tokenizer(of: model, call)
        let contextLength = try positive(call, "context", default: store.map { $0.store.contextLength > 1 ? $0.store.contextLength : 128 } ?? 128)
        guard contextLength <= model.model.config.nPositions else {
            throw call.error(atOption: "context", "context \(contextLength) exceeds the model's \(model.model.config.nPositions) positions")
        }
        let tokens = try positive(call, "tokens", default: 10_000)
        guard tokens >= contextLength else {
            throw call.error(atOption: "tokens", "tokens=\(tokens) is less than one context window of \(contextLength)")
        }
        var windows = try ContextWindows(corpus: corpus.corpus, contextLength: contextLength, maxTokens: tokens,
                                         tokenize: { [special = corpus.corpus.specialTokens] in tokenizer.encode($0, special: special) })
        let all = try windows.all()
        guard !all.isEmpty else {
            let message = "the corpus has fewer than \(contextLength) tokens: no full window"
            throw corpusArgument.map { call.error(atArgument: $0, message) } ?? call.error(atOption: "corpus", message)
        }
        return all
    }

    /// Each SAE of the group takes the width of the model's value at its hook.
    static func checkSpliceWidths(_ sae: SAEObject, model: ModelObject, contextLength: Int, call: Call, argument: Int) throws {
        for (i, s) in sae.group.saes.enumerated() {
            let hook = s.config.hookName.flatMap { try? HookPoint.parse($0) }
            let width = hook?.width(model.model.config, seqLen: contextLength) ?? model.model.config.nEmbd
            guard s.dIn == width else {
                throw call.error(atArgument: argument, "the SAE of layer \(sae.group.layers[i]) takes d_in \(s.dIn) but the model's \(hook?.name ?? "residual stream") is \(width) wide")
            }
        }
    }

    // MARK: frontier

    static func frontier(_ call: Call) throws -> Value {
        let metric = try frontierMetric(call)
        let series = try call.arguments.indices.map { try frontierSeries(call, $0) }
        let layers = try frontierLayers(call, series)
        let points = try measureFrontiers(call, series, metric: metric, layers: layers)
        let gridOptions = Set(series.map(\.gridOption))
        // One grid column named by the option when every curve varies the same one; else the option in each cell.
        let gridColumn = gridOptions.count == 1 ? gridOptions.first! : "grid"
        for layer in layers {
            let lines = series.enumerated().compactMap { s, curve -> LineSeries? in
                let mine = points.filter { $0.series == s && $0.layer == layer }.sorted { $0.l0 < $1.l0 }
                guard !mine.isEmpty else { return nil }
                return LineSeries(label: "\(curve.name) (\(curve.gridOption))", x: mine.map(\.l0), y: mine.map(\.metric),
                                  pointLabels: mine.map { formatGridValue(curve.values[$0.group]) })
            }
            call.display(.figure(Figure(title: "layer \(layer): \(metric.rawValue) against L0", xLabel: "L0",
                                        yLabel: metric.rawValue, logX: true, kind: .line(series: lines))))
        }
        let rows: [[Cell]] = points.map { p in
            let curve = series[p.series]
            let grid: Cell = gridOptions.count == 1 ? .number(curve.values[p.group]) : .text(curve.label(p.group))
            return [.text(curve.name), grid, .number(Double(p.layer)), .number(p.l0), .number(p.metric)]
        }
        return .table(Table(columns: ["sweep", gridColumn, "layer", "l0", metric.rawValue], rows: rows))
    }

    // MARK: pick

    static func pick(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SweepObject.self)
        let sweep = object.sweep
        let grid = sweep.gridOption
        let values = sweep.values.map(formatGridValue).joined(separator: ", ")
        for other in SweepVerbs.gridOptions where other != grid && call.has(other) {
            throw call.error(atOption: other, "`\(argumentNames(call).first ?? "sweep")` varies \(grid), not \(other); its grid: \(grid)=[\(values)]")
        }
        guard let value = call.number(grid) else {
            throw call.error("give the grid value: pick \(argumentNames(call).first ?? "SWEEP") \(grid)=VALUE, one of \(values)")
        }
        // Grid values are compared as the SAEs hold them (Float), as the sweep does.
        guard let g = sweep.values.firstIndex(where: { Float($0) == Float(value) }) else {
            throw call.error(atOption: grid, "\(grid)=\(formatNumber(value)) is not in the sweep's grid [\(values)]")
        }
        return .object(object.groupObject(g))
    }

    // MARK: match

    static func match(_ call: Call) throws -> Value {
        let metric = try frontierMetric(call)
        let series = try [frontierSeries(call, 0), frontierSeries(call, 1)]
        let layers: [Int]
        if call.has("layer") { layers = try frontierLayers(call, series) }
        else {
            layers = series[0].layers.filter(series[1].layers.contains)
            guard !layers.isEmpty else {
                throw call.error(atArgument: 1, "`\(series[0].name)` (layers \(series[0].layers.map(String.init).joined(separator: ", "))) and `\(series[1].name)` (layers \(series[1].layers.map(String.init).joined(separator: ", "))) share no layer")
            }
        }
        let points = try measureFrontiers(call, series, metric: metric, layers: layers)
        func number(_ v: Double?) -> Cell { v.map(Cell.number) ?? .null }
        var rows: [[Cell]] = []
        for layer in layers {
            let curves = try (0..<2).map { s -> FrontierCurve in
                let curve = series[s]
                var kept: [FrontierPoint] = []
                for p in points where p.series == s && p.layer == layer {
                    let point = FrontierPoint(label: "\(curve.name) \(curve.label(p.group))", l0: p.l0, metric: p.metric)
                    if p.l0 > 0 && p.l0.isFinite && p.metric.isFinite { kept.append(point) }
                    else {
                        call.sink.stream("warning: layer \(layer): \(point.label) is left out of the match: L0 \(formatTableNumber(p.l0)), \(metric.rawValue) \(formatTableNumber(p.metric)) (matching interpolates in log L0, which needs L0 > 0)\n", name: .stderr)
                    }
                }
                guard !kept.isEmpty else {
                    throw call.error(atArgument: s, "layer \(layer): no SAE of `\(curve.name)` has a positive L0 and a finite \(metric.rawValue) to match")
                }
                return try FrontierCurve(points: kept)
            }
            let result = FrontierMatch(curves[0], curves[1])
            let layerCell = Cell.number(Double(layer))
            for row in result.rows {
                rows.append([layerCell, .text("matched"), .text("L0 of \(row.label)"), .number(row.l0), .number(row.l0),
                             .number(1), .number(row.metricA), .number(row.metricB), .number(row.metricB - row.metricA)])
            }
            if result.overlap == nil {
                func range(_ c: FrontierCurve) -> String {
                    c.minL0 == c.maxL0 ? formatTableNumber(c.minL0) : "\(formatTableNumber(c.minL0))–\(formatTableNumber(c.maxL0))"
                }
                rows.append([layerCell, .text("no_overlap"),
                             .text("the L0 ranges do not overlap: \(series[0].name) \(range(curves[0])), \(series[1].name) \(range(curves[1])); no equal-L0 comparison"),
                             .null, .null, .null, .null, .null, .null])
            }
            let pair = result.nearest
            rows.append([layerCell, .text("nearest"), .text("nearest pair: \(pair.a.label) · \(pair.b.label)"),
                         .number(pair.a.l0), .number(pair.b.l0), .number(pair.l0Ratio), .number(pair.a.metric),
                         .number(pair.b.metric), .number(pair.b.metric - pair.a.metric)])
        }
        return .table(Table(title: "match: a = \(series[0].name), b = \(series[1].name), \(metric.rawValue) at equal L0 (log-linear between grid points)",
                            columns: ["layer", "row", "at", "l0_a", "l0_b", "l0_ratio", "metric_a", "metric_b", "b_minus_a"], rows: rows))
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// Splice results by SAE and setting. An entry holds its SAE weakly and the SAE's optimizer step when measured, so
/// it is used only for that very SAE object at that step (training changes the step; a freed SAE never matches).
final class SpliceCache: @unchecked Sendable {
    // @unchecked Sendable: used from the session's one command thread.
    struct Setting: Equatable {
        let corpus: ObjectIdentifier
        let windows: Int
        let context: Int
        /// The first window's tokens: the same corpus object read again yields the same windows.
        let firstTokens: [Int32]
    }

    private struct Entry {
        weak var sae: SAE?
        let steps: Int
        let hook: String
        let setting: Setting
        let result: SpliceResult
    }

    private var entries: [Entry] = []

    func result(for sae: SAE, hook: String, setting: Setting) -> SpliceResult? {
        entries.first { $0.sae === sae && $0.steps == sae.optimizerSteps && $0.hook == hook && $0.setting == setting }?.result
    }

    func store(_ result: SpliceResult, for sae: SAE, hook: String, setting: Setting) {
        entries.removeAll { $0.sae == nil || ($0.sae === sae && $0.hook == hook && $0.setting == setting) }
        entries.append(Entry(sae: sae, steps: sae.optimizerSteps, hook: hook, setting: setting, result: result))
    }
}
