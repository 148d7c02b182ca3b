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
