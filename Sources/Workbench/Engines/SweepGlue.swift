import Activations
import Foundation
import SAE
import Tensor

// sweep: adapters over SAE's SAESweep (made from the same options as `sae`, plus the grid).

extension Engines {
    static func makeSweep(_ call: Call) throws -> Value {
        guard case .string(let kind) = call.arguments[0] else {
            throw call.error(atArgument: 0, "expected one of \(SAERegistry.names.joined(separator: ", "))")
        }
        let architecture: SAEArchitecture
        do { architecture = try SAERegistry.architecture(named: kind) } catch {
            throw call.error(atArgument: 0, "\(error)")
        }
        let grid = architecture.sparsityControl.name
        // Only the kind's sparsity control takes a grid; every other option takes one value.
        for option in SweepVerbs.architectureOptions.map(\.name) where option != grid && call.has(option) {
            guard case .list? = call.option(option) else { continue }
            if architecture.options.contains(where: { $0.name == option }) {
                throw call.error(atOption: option, "a \(architecture.name) sweep varies \(grid), its sparsity control; \(option)= takes one value")
            }
            throw call.error(atOption: option, "a \(architecture.name) sweep varies \(grid), its sparsity control, not \(option) (\(option)= is not an option of \(architecture.name))")
        }
        for option in SweepVerbs.architectureOptions where option.kind == .value && option.name != grid && call.has(option.name) {
            guard call.number(option.name) != nil else {
                throw call.error(atOption: option.name, "\(option.name)= needs a number, found \(call.option(option.name).map { describe($0) } ?? "nothing")")
            }
        }
        guard let given = call.option(grid) else {
            throw call.error("`sweep \(architecture.name)` needs its grid: \(grid)=[v1, v2, …] or \(grid)=geom(lo, hi, n); usage: \(call.verb.usage)")
        }
        guard case .list(let items) = given else {
            throw call.error(atOption: grid, "the grid \(grid)= needs a list of values such as [1e-4, 1e-3] or geom(lo, hi, n), found \(describe(given))")
        }
        let values = try items.enumerated().map { i, item -> Double in
            guard case .number(let v) = item else {
                throw call.error(atOption: grid, "\(grid) grid value \(i + 1) is \(describe(item)), not a number")
            }
            if architecture.sparsityControl.value == .integer, exactInt(v) == nil {
                throw call.error(atOption: grid, "\(grid) grid value \(i + 1) is \(formatNumber(v)), not a whole number: \(architecture.name)'s \(grid) takes whole numbers (geom(…) spaces reals: give a list such as [8, 16, 32], or a geom whose points are whole, such as geom(8, 64, 4))")
            }
            return v
        }
        let spec = try saeSpec(call, gridOption: grid, copies: max(values.count, 1), copiesOption: grid)
        let seeds = SAESweep.SeedPolicy(rawValue: call.string("seeds") ?? "same") ?? .same
        let sweep: SAESweep
        do {
            sweep = try SAESweep.make(template: spec.template, values: values, seeds: seeds, dims: spec.dims,
                                      expansion: spec.expansion, layerMeanNorms: spec.layerMeanNorms, layers: spec.layers,
                                      hookNames: spec.hookNames)
        } catch let e as SAEError { throw call.error(atOption: grid, e.message) }
        if spec.scaled { for group in sweep.groups { try applyScaledInitialization(group, spec) } }
        return .object(SweepObject(sweep: sweep, store: spec.storeObject))
    }

    /// `train SWEEP STORE …`: every SAE of the sweep on the same batches, each read once (GroupTrainer), then a
    /// short evaluation of every group for the sweep's table.
    static func trainSweep(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SweepObject.self)
        let storeObject = try call.object(1, as: StoreObject.self)
        let store = storeObject.store
        let sweep = object.sweep
        let request = try trainingRequest(call, saes: sweep.allSAEs, trained: sweep.stepsTrained, what: "sweep")
        let hooks = try hookIndices(object.groupObject(0), store, call, argument: 1)
        // One reader per (sweep, store), so a second `train` continues the shuffled stream.
        if object.reader == nil || object.reader!.store !== store || object.reader!.hooks != hooks {
            object.reader = try ShuffledBatchReader(store: store, hooks: hooks, seed: UInt64(max(0, call.session.settings.seed)))
        }
        if object.store == nil { object.store = storeObject }
        object.lastTraining = TrainingSettings(batch: request.batch, lr: request.lr, warmup: request.optimizer.warmupSteps)
        let before = sweep.stepsTrained
        let context = call.work("train")
        defer { call.finish(context) }
        let trainer = GroupTrainer(optimizer: request.optimizer, batchSize: request.batch, logEvery: request.logEvery,
                                   checkpointPath: call.string("checkpoint"), resampleEvery: request.resampleEvery)
        let logs: [TrainingLog]
        do {
            logs = try trainer.train(sweep, source: object.reader!, steps: request.steps, context: context)
        } catch let cancelled as Cancelled {
            object.lastEval = nil
            // Every SAE of the sweep stopped after the same step (cancellation is checked between steps).
            call.sink.stream("train: stopped after \(sweep.stepsTrained - before) of \(request.steps) steps; all \(sweep.allSAEs.count) SAEs of the sweep keep them (\(sweep.stepsTrained) steps in all); `train` again resumes\n", name: .stderr)
            throw cancelled
        }
        call.finish(context)
        object.lastEval = try? evaluateSweep(object, on: store, tokens: min(16_384, request.batch * 4), call: call, argument: 1)
        let columns = [sweep.gridOption] + TrainingLog.columns
        var rows: [[Cell]] = []
        for (g, log) in logs.enumerated() {
            for row in log.table { rows.append([.number(decimal(Float(sweep.values[g])))] + row.map(Cell.number)) }
        }
        if Set(logs[0].rows.map(\.step)).count >= 2 { call.display(.figure(sweepTrainingCurves(sweep))) }
        return .table(Table(columns: columns, rows: rows))
    }

    /// Loss against step for each grid value (first layer; every layer when there is one grid value).
    static func sweepTrainingCurves(_ sweep: SAESweep) -> Figure {
        let layer = sweep.layers[0]
        let series = sweep.groups.enumerated().map { g, group -> LineSeries in
            let rows = group.log.rows.filter { $0.layer == layer }
            return LineSeries(label: "\(sweep.gridOption) \(formatGridValue(sweep.values[g]))", x: rows.map { Double($0.step) }, y: rows.map(\.loss))
        }
        return Figure(title: "training loss, layer \(layer)", xLabel: "step", yLabel: "loss", logY: true, kind: .line(series: series))
    }

    /// Each group's metrics on the same first `tokens` non-BOS rows (in grid order), the store read once for all of
    /// them; sets `lastEval`.
    static func evaluateSweep(_ object: SweepObject, on store: ActivationStore, tokens: Int?, call: Call, argument: Int) throws -> [[LayerMetrics]] {
        let metrics = try evaluateTogether(object.sweep.groups.indices.map(object.groupObject), on: store, tokens: tokens,
                                           call: call, argument: argument)
        object.lastEval = metrics
        return metrics
    }

    static func evalSweep(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SweepObject.self)
        let store = try call.object(1, as: StoreObject.self).store
        if let t = call.integer("tokens"), t < 1 { throw call.error(atOption: "tokens", "tokens must be at least 1") }
        let metrics = try evaluateSweep(object, on: store, tokens: call.integer("tokens"), call: call, argument: 1)
        var rows: [[Cell]] = []
        for (g, group) in metrics.enumerated() {
            for m in group { rows.append([.number(decimal(Float(object.sweep.values[g])))] + evalRow(m)) }
        }
        return .table(Table(columns: [object.sweep.gridOption] + evalColumns, rows: rows))
    }

    /// A value as a message names it.
    static func describe(_ value: Value) -> String {
        switch value {
        case .number(let v): return "the number \(formatNumber(v))"
        case .string(let s): return "the string \(quoteString(s).truncated(to: 40))"
        case .list(let items): return "a list of \(items.count)"
        case .object(let o): return "a \(o.typeName)"
        default: return "a \(value.typeName)"
        }
    }
}
