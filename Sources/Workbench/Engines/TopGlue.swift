import Activations
import Foundation
import GPT2
import SAE
import Tensor

// top and feature: top-activating tokens in context (Activations.TopActivations) and the feature card.

extension Engines {
    /// Token text for contexts: the `model=` option's tokenizer, else any bound model's, else ids as text.
    /// Rows without a token (synthetic or imported activations, id -1) show as "·".
    static func tokenText(_ call: Call) -> (Int32) -> String {
        var tokenizer: Tokenizer?
        if case .object(let o)? = call.option("model"), let model = o as? ModelObject { tokenizer = model.model.tokenizer }
        for name in call.session.boundNames where tokenizer == nil {
            if case .object(let o)? = call.session.value(named: name), let model = o as? ModelObject { tokenizer = model.model.tokenizer }
        }
        return { id in id < 0 ? "·" : tokenizer?.tokenString(id) ?? String(id) }
    }

    struct TopQuery {
        var sae: SAE
        var layer: Int
        var hook: Int
        var feature: Int
        var summary: FeatureActivationSummary
        var rows: [[Cell]]
        /// NSAE codes saturate at 1.0: the hits are ranked by the pre-activation, shown beside the activation.
        var columns: [String] {
            summary.top.contains { $0.preActivation != nil } ? ["rank", "activation", "pre_activation", "position", "token", "context"] : topColumns
        }
    }

    /// Scans the store for one feature's top activations and builds the context rows with per-token activations.
    static func topQuery(_ call: Call, featureOption: String) throws -> TopQuery {
        let object = try call.object(0, as: SAEObject.self)
        let store = try call.object(1, as: StoreObject.self).store
        if let processing = processing(of: store) { try checkProcessing(object, against: processing, what: "the store", call: call) }
        let index = try saeIndex(object, call)
        let sae = object.group[index]
        let feature = try featureIndex(sae, call, option: featureOption)
        let hook = try hookIndices(object, store, call, argument: 1)[index]
        var options = TopActivations.Options()
        options.k = try positive(call, "k")
        if let t = call.integer("tokens") { options.maxTokens = t }
        let work = call.work("top")
        let summaries: [FeatureActivationSummary]
        do {
            defer { call.finish(work) }
            summaries = try TopActivations.scan(store: store, hook: hook, sae: sae, features: [feature], options: options, context: work)
        }
        guard let summary = summaries.first else { throw call.error("the scan returned no summary for feature \(feature)") }
        let span = try call.requiredInteger("context")
        guard span >= 0 else { throw call.error(atOption: "context", "context must be ≥ 0") }
        let text = tokenText(call)
        let scale = Double(summary.top.first?.activation ?? 0)
        let rows = try summary.top.enumerated().map { rank, hit -> [Cell] in
            let example = try store.context(of: hit, before: span, after: span, tokenString: text)
            let lo = hit.token - example.focus
            let codes = try sae.encode(try store.matrix(hook: hook, rows: lo..<(lo + example.tokens.count)))
            let tokens = example.tokens.enumerated().map { j, token in
                HighlightedToken(text: token, activation: Double(codes[j, feature]), isFocus: j == example.focus)
            }
            return [.number(Double(rank + 1)), .number(Double(hit.activation))] + (hit.preActivation.map { [.number(Double($0))] } ?? [])
                + [.number(Double(hit.token)), .text(example.tokens[example.focus]), .tokens(tokens, scale: scale)]
        }
        return TopQuery(sae: sae, layer: object.group.layers[index], hook: hook, feature: feature, summary: summary, rows: rows)
    }

    static let topColumns = ["rank", "activation", "position", "token", "context"]

    static func top(_ call: Call) throws -> Value {
        let query = try topQuery(call, featureOption: "feature")
        return .table(Table(title: "layer \(query.layer) feature \(query.feature): top activations",
                            columns: query.columns, rows: query.rows))
    }

    static func feature(_ call: Call) throws -> Value {
        let query = try topQuery(call, featureOption: "id")
        let s = query.summary
        let decoderNorm = DictionaryAnalysis.decoderNorms(query.sae)[query.feature]
        call.display(.table(Table(title: "layer \(query.layer) feature \(query.feature)", columns: ["property", "value"], rows: [
            [.text("density"), .number(s.density)], [.text("active tokens"), .number(Double(s.activeCount))],
            [.text("tokens scanned"), .number(Double(s.tokensScanned))], [.text("mean activation"), .number(s.meanActive)],
            [.text("max activation"), .number(Double(s.top.first?.activation ?? 0))],
        ] + (s.top.first?.preActivation.map { [[.text("max pre-activation"), .number(Double($0))]] } ?? []) + [
            [.text("decoder norm"), .number(decoderNorm)],
        ])))
        // The axis spans the bins this feature uses (the fixed edges cover log10 −4…4, mostly empty for one feature).
        let edges = FeatureActivationSummary.histogramEdges.map { log10($0) }
        let used = s.histogram.indices.filter { s.histogram[$0] > 0 }
        let lo = used.first ?? 0, hi = min(edges.count - 1, (used.last ?? (edges.count - 2)) + 1)
        call.display(.figure(Figure(title: "layer \(query.layer) feature \(query.feature): activation histogram (active tokens)", xLabel: "log10 activation", yLabel: "tokens",
                                    kind: .histogram(edges: Array(edges[lo...hi]), series: [HistogramSeries(label: "feature \(query.feature)", counts: s.histogram[lo..<hi].map(Double.init))]))))
        if case .object(let o)? = call.option("model"), let model = o as? ModelObject {
            guard query.sae.dIn == model.model.config.nEmbd else {
                throw call.error(atOption: "model", "the SAE's d_in \(query.sae.dIn) differs from the model's width \(model.model.config.nEmbd)")
            }
            call.display(.table(logitTable(try LogitLens.compute(model: model.model, sae: query.sae, feature: query.feature, k: 10))))
        }
        return .table(Table(title: "top activations", columns: query.columns, rows: query.rows))
    }
}

extension Engines {
    /// The SAE's encoder, through its public API only (one place to adapt when SAE architectures change).
    static func saeEncoder(_ sae: SAE) -> (Matrix) throws -> Matrix { { try sae.encode($0) } }

    static func encodeCodes(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SAEObject.self)
        let store = try call.object(1, as: StoreObject.self).store
        let out = try call.requiredString("out")
        if let processing = processing(of: store) { try checkProcessing(object, against: processing, what: "the store", call: call) }
        let index = try saeIndex(object, call)
        let sae = object.group[index]
        let hook = try hookIndices(object, store, call, argument: 1)[index]
        let tokens = call.has("tokens") ? try positive(call, "tokens") : nil
        let context = call.work("encode")
        defer { call.finish(context) }
        let summary: CodesExport.Summary
        do {
            summary = try CodesExport.write(store: store, hook: hook, dSAE: sae.dSAE, maxTokens: tokens, to: out,
                                            context: context, encode: saeEncoder(sae))
        } catch let error as ActivationsError {
            throw call.error(atOption: "out", "\(error)")
        }
        return .table(Table(columns: ["layer", "hook", "rows", "nonzeros", "mean_l0", "path"], rows: [[
            .number(Double(object.group.layers[index])), .text(store.hooks[hook].name), .number(Double(summary.rows)),
            .number(Double(summary.nonZeros)), .number(Double(summary.nonZeros) / Double(summary.rows)), .text(out),
        ]]))
    }
}
