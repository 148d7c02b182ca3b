import Activations
import Foundation
import SAE

/// A sweep in the session: the SAE module's sweep, the store it was made for and the reader training continues
/// from, as SAEObject keeps them for a group.
final class SweepObject: SessionObject, SaveableObject {
    let sweep: SAESweep
    var store: StoreObject?
    var reader: ShuffledBatchReader?
    /// The latest evaluation of each group (grid order), shown in the sweep's table.
    var lastEval: [[LayerMetrics]]?
    var lastTraining: TrainingSettings?
    /// The cfg's `model_from_pretrained_kwargs` flags of a loaded sweep (kept, and written back on save).
    var loadedModelKwargs: [String: Bool]?

    init(sweep: SAESweep, store: StoreObject?, modelKwargs: [String: Bool]? = nil) {
        self.sweep = sweep; self.store = store; self.loadedModelKwargs = modelKwargs
    }

    var modelFromPretrainedKwargs: [String: Bool]? {
        loadedModelKwargs ?? store.flatMap { Engines.processing(of: $0.store) }?.flags
    }

    /// Group i as an SAE value of its own (sharing its SAEs), e.g. for the verbs that take one group.
    func groupObject(_ i: Int) -> SAEObject {
        let object = SAEObject(group: sweep.groups[i], store: store, modelKwargs: loadedModelKwargs)
        object.lastEval = lastEval?[i]
        return object
    }

    var typeName: String { "sweep" }
    var summary: String {
        let first = sweep.groups[0].saes[0].config
        return "\(sweep.count) × \(sweep.groups[0].count) \(sweep.architecture.name) \(first.dIn)→\(first.dSAE), \(sweep.gridOption) in ["
            + sweep.values.map(formatGridValue).joined(separator: ", ") + "], trained \(sweep.stepsTrained) steps"
    }

    /// One row per grid point and layer: the grid value, layer, d_sae, steps, and the latest evaluation's L0 and
    /// explained variance (empty until the sweep is evaluated; `train` evaluates it at the end).
    var descriptionTable: Table {
        var rows: [[Cell]] = []
        for (g, group) in sweep.groups.enumerated() {
            for (i, sae) in group.saes.enumerated() {
                let metrics = lastEval.flatMap { g < $0.count && i < $0[g].count ? $0[g][i] : nil }
                rows.append([.number(decimal(Float(sweep.values[g]))), .number(Double(group.layers[i])),
                             sae.config.hookName.map(Cell.text) ?? .null, .number(Double(sae.dSAE)),
                             .number(Double(sae.optimizerSteps)),
                             metrics.map { .number($0.l0) } ?? .null, metrics.map { .number($0.explainedVariance) } ?? .null])
            }
        }
        return Table(columns: [sweep.gridOption, "layer", "hook", "d_sae", "steps", "l0", "explained_variance"], rows: rows)
    }

    var json: JSON {
        .object([("architecture", .string(sweep.architecture.name)), ("grid_option", .string(sweep.gridOption)),
                 ("values", .array(sweep.values.map { .number(decimal(Float($0))) })),
                 ("steps", .number(Double(sweep.stepsTrained))),
                 ("groups", .array(sweep.groups.enumerated().map { g, group in
                     .object([("value", .number(decimal(Float(sweep.values[g])))), ("steps", .number(Double(group.stepsTrained))),
                              ("layers", .array(group.saes.enumerated().map { i, sae in
                                  let metrics = lastEval.flatMap { g < $0.count && i < $0[g].count ? $0[g][i] : nil }
                                  return .object([("layer", .number(Double(group.layers[i]))),
                                                  ("hook", sae.config.hookName.map(JSON.string) ?? .null),
                                                  ("d_in", .number(Double(sae.dIn))), ("d_sae", .number(Double(sae.dSAE))),
                                                  ("steps", .number(Double(sae.optimizerSteps))),
                                                  ("l0", metrics.map { .number($0.l0) } ?? .null),
                                                  ("explained_variance", metrics.map { .number($0.explainedVariance) } ?? .null)])
                              }))])
                 }))])
    }

    func save(to path: String, call: Call) throws {
        do { try SAELensIO.save(sweep, to: path) } catch { throw call.error(atArgument: 1, "\(error)") }
        if let kwargs = modelFromPretrainedKwargs { try Engines.writeModelFromPretrainedKwargs(kwargs, under: path) }
    }
}
