import Activations
import Foundation
import GPT2
import SAE
import Tensor

// features, logits, norms, cosine, fit, recovery: adapters over SAE's dictionary analysis and Activations' logit lens.

extension Engines {
    /// The index within the group of the SAE for `layer=`.
    static func saeIndex(_ sae: SAEObject, _ call: Call, option: String = "layer") throws -> Int {
        let layer = try call.requiredInteger(option)
        guard let index = sae.group.layers.firstIndex(of: layer) else {
            throw call.error(atOption: option, "the SAE group has no layer \(layer); its layers are \(sae.group.layers.map(String.init).joined(separator: ", "))")
        }
        return index
    }

    static func featureIndex(_ sae: SAE, _ call: Call, option: String) throws -> Int {
        let feature = try call.requiredInteger(option)
        guard feature >= 0, feature < sae.dSAE else {
            throw call.error(atOption: option, "feature \(feature) does not exist: this SAE has features 0..\(sae.dSAE - 1)")
        }
        return feature
    }

    static func features(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SAEObject.self)
        let index = try saeIndex(object, call)
        let sae = object.group[index]
        let norms = DictionaryAnalysis.decoderNorms(sae)
        var density: [Double]? = sae.featureDensity.map { $0.map(Double.init) }
        var meanActivation: [Double]?
        if let storeObject = object.store {
            // Density and mean activation measured on up to 10k tokens of the layer's activations.
            let hook = try hookIndices(object, storeObject.store, call, argument: 0)[index]
            let work = call.work("features")
            let measured: FeatureStatistics.Result
            do {
                defer { call.finish(work) }
                measured = try FeatureStatistics.measure(store: storeObject.store, hook: hook, sae: sae, tokens: 10_000, context: work)
            }
            if measured.tokens > 0 {
                density = measured.density
                meanActivation = measured.meanActivation
            }
        }
        var order = Array(0..<sae.dSAE)
        switch try call.requiredString("sort") {
        case "density":
            guard let density else { throw call.error(atOption: "sort", "no densities yet: the SAE has no store; run `eval` first") }
            order.sort { density[$0] > density[$1] || (density[$0] == density[$1] && $0 < $1) }
        case "id": break
        default: order.sort { norms[$0] > norms[$1] || (norms[$0] == norms[$1] && $0 < $1) }
        }
        let top = try positive(call, "top")
        return .table(Table(columns: ["feature", "norm", "density", "mean_activation"], rows: order.prefix(top).map { f in
            [.number(Double(f)), .number(norms[f]), density.map { .number($0[f]) } ?? .null, meanActivation.map { .number($0[f]) } ?? .null]
        }))
    }

    static func logits(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SAEObject.self)
        let model = try call.object(1, as: ModelObject.self)
        let sae = object.group[try saeIndex(object, call)]
        let feature = try featureIndex(sae, call, option: "feature")
        guard sae.dIn == model.model.config.nEmbd else {
            throw call.error(atArgument: 1, "the SAE's d_in \(sae.dIn) differs from the model's width \(model.model.config.nEmbd)")
        }
        let k = try positive(call, "k")
        return .table(logitTable(try LogitLens.compute(model: model.model, sae: sae, feature: feature, k: k)))
    }

    /// A token as a table shows it: a space as `␣`, so " the" and "the" differ and a space token is not a blank
    /// cell; newlines and tabs as `⏎` and `⇥`.
    static func visibleToken(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.flatMap { c -> [Unicode.Scalar] in
            switch c {
            case " ": return ["␣"]
            case "\n": return ["⏎"]
            case "\t": return ["⇥"]
            default: return [c]
            }
        }))
    }

    static func logitTable(_ lens: LogitLens.Result) -> Table {
        let rows = (0..<max(lens.promoted.count, lens.suppressed.count)).map { i -> [Cell] in
            let p = i < lens.promoted.count ? lens.promoted[i] : nil
            let s = i < lens.suppressed.count ? lens.suppressed[i] : nil
            return [.number(Double(i + 1)), p.map { .text(visibleToken($0.text)) } ?? .null, p.map { .number(Double($0.logit)) } ?? .null,
                    s.map { .text(visibleToken($0.text)) } ?? .null, s.map { .number(Double($0.logit)) } ?? .null]
        }
        return Table(title: "logit lens", columns: ["rank", "promoted", "logit", "suppressed", "logit "], rows: rows)
    }

    static func norms(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SAEObject.self)
        let summaries = object.group.saes.map { DictionaryAnalysis.normSummary($0) }
        let layers = object.group.layers
        call.display(.figure(Figure.histogram(title: "\(argumentNames(call).first ?? "sae"): decoder column norms", xLabel: "‖W_dec[f]‖",
                                              samples: zip(layers, summaries).map { ("layer \($0)", $1.norms) })))
        let names = ["min", "p1", "p5", "p25", "median", "p75", "p95", "p99", "max"]
        return .table(Table(columns: ["layer", "mean"] + names, rows: zip(layers, summaries).map { layer, s in
            [.number(Double(layer)), .number(s.mean)] + s.quantiles.map(Cell.number)
        }))
    }

    static func cosine(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SAEObject.self)
        let indices = call.has("layer") ? [try saeIndex(object, call)] : Array(object.group.saes.indices)
        let pairs = try positive(call, "pairs")
        let pillarCount = try positive(call, "pillars")
        let seed = UInt64(max(0, call.integer("seed") ?? call.session.settings.seed))
        var rows: [[Cell]] = []
        var series: [HistogramSeries] = []
        var edges: [Double] = []
        for i in indices {
            try call.cancellation.check()
            let sae = object.group[i]
            let layer = object.group.layers[i]
            let sampled = try DictionaryAnalysis.cosineSimilarity(sae, pairs: pairs, seed: seed)
            let pillars = try DictionaryAnalysis.pillars(sae, top: min(pillarCount, sae.dSAE))
            edges = sampled.histogram.edges
            series.append(HistogramSeries(label: "layer \(layer) pairs", counts: sampled.histogram.counts.map(Double.init)))
            series.append(HistogramSeries(label: "layer \(layer) pillars", counts: pillars.cosines.histogram.counts.map(Double.init)))
            rows.append([.number(Double(layer)), .text("pairs"), .number(Double(sampled.pairs)), .bool(sampled.exact),
                         .number(sampled.mean), .number(sampled.fractionAbove09)])
            rows.append([.number(Double(layer)), .text("pillars"), .number(Double(pillars.cosines.pairs)), .bool(true),
                         .number(pillars.cosines.mean), .number(pillars.cosines.fractionAbove09)])
        }
        call.display(.figure(Figure(title: "\(argumentNames(call).first ?? "sae"): cosine similarity of decoder directions", xLabel: "cosine", yLabel: "pairs",
                                    logY: true, kind: .histogram(edges: edges, series: series))))
        return .table(Table(columns: ["layer", "set", "pairs", "exact", "mean", "fraction_above_0.9"], rows: rows))
    }

    static func fit(_ call: Call) throws -> Value {
        if case .object(let o) = call.arguments[0], o is SweepObject { return try fitSweep(call) }
        let object = try call.object(0, as: SAEObject.self)
        let store = try call.object(1, as: StoreObject.self).store
        guard object.group.count >= 3 else {
            throw call.error(atArgument: 0, "a fit across layers needs at least 3 layers; this group has \(object.group.count)")
        }
        let metrics = try evaluate(object, on: store, tokens: try positive(call, "tokens"), call: call, argument: 1)
        let line = try DictionaryAnalysis.l0VersusNorm(metrics)
        let points = metrics.map { ScatterPoint(x: $0.meanInputNorm, y: $0.l0, label: "layer \($0.layer)") }
        let name = argumentNames(call).first ?? "sae"
        call.display(.figure(Figure(title: "\(name): L0 against mean input norm across layers", xLabel: "mean ‖x‖", yLabel: "L0",
                                    kind: .scatter(points: points, fit: LineFit(slope: line.slope, intercept: line.intercept, r: line.r, p: line.p)))))
        return .table(Table(columns: ["sae", "slope", "intercept", "r", "p", "layers"], rows: [
            [.text(name), .number(line.slope), .number(line.intercept), .number(line.r), .number(line.p), .number(Double(line.n))],
        ]))
    }

    /// One fit of L0 against mean input norm per grid value, every group measured on the same tokens in one scan;
    /// the figure draws each grid value's L0 across layers against the layers' mean norm.
    static func fitSweep(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SweepObject.self)
        let store = try call.object(1, as: StoreObject.self).store
        let sweep = object.sweep
        guard sweep.layers.count >= 3 else {
            throw call.error(atArgument: 0, "a fit across layers needs at least 3 layers; this sweep's groups have \(sweep.layers.count)")
        }
        let groups = sweep.groups.indices.map { object.groupObject($0) }
        let metrics = try evaluateTogether(groups, on: store, tokens: try positive(call, "tokens", default: 10_000), call: call, argument: 1)
        object.lastEval = metrics
        let name = argumentNames(call).first ?? "sweep"
        var rows: [[Cell]] = [], series: [LineSeries] = []
        for (g, perLayer) in metrics.enumerated() {
            let line = try DictionaryAnalysis.l0VersusNorm(perLayer)
            rows.append([.text(name), .number(decimal(Float(sweep.values[g]))), .number(line.slope), .number(line.intercept),
                         .number(line.r), .number(line.p), .number(Double(line.n))])
            let byNorm = perLayer.sorted { $0.meanInputNorm < $1.meanInputNorm }
            series.append(LineSeries(label: "\(sweep.gridOption) \(formatGridValue(sweep.values[g])): slope \(String(format: "%.3g", line.slope)), r \(String(format: "%.3g", line.r))",
                                     x: byNorm.map(\.meanInputNorm), y: byNorm.map(\.l0), pointLabels: byNorm.map { "layer \($0.layer)" }))
        }
        call.display(.figure(Figure(title: "\(name): L0 against mean input norm across layers, per \(sweep.gridOption)", xLabel: "mean ‖x‖",
                                    yLabel: "L0", kind: .line(series: series))))
        return .table(Table(columns: ["sae", sweep.gridOption, "slope", "intercept", "r", "p", "layers"], rows: rows))
    }

    static func recovery(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SAEObject.self)
        let storeObject = try call.object(1, as: StoreObject.self)
        guard let truth = storeObject.groundTruth else {
            throw call.error(atArgument: 1, "this store has no ground-truth features (\(ActivationStore.groundTruthFile)); recovery needs a store made by `synth`")
        }
        return .table(Table(columns: ["layer", "mmcs"], rows: try object.group.saes.enumerated().map { i, sae in
            [.number(Double(object.group.layers[i])), .number(try SyntheticData.recovery(trueFeatures: truth, learned: sae))]
        }))
    }
}
