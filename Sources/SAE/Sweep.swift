// A sweep: one SAE group per value of the architecture's sparsity control (α for the L1 kinds, k for TopK and
// BatchTopK, the L0 coefficient for JumpReLU), every group over the same layers with the same other options, so
// the groups trace a sparsity–fidelity frontier when trained on the same batches (GroupTrainer feeds them all).
import Foundation
import Tensor

public final class SAESweep: @unchecked Sendable {
    // @unchecked Sendable: see SAEGroup; a sweep is used by one thread at a time.
    public let architecture: SAEArchitecture
    /// The option the grid sets (`architecture.sparsityControl.name`).
    public let gridOption: String
    /// The grid, in the order the user gave it; `groups[i]` has `gridOption = values[i]`.
    public let values: [Double]
    public let groups: [SAEGroup]

    /// Checks that the groups are one architecture, over the same layers and sizes, with the grid option at
    /// `values[i]` in group i and the values distinct.
    public init(architecture: SAEArchitecture, gridOption: String, values: [Double], groups: [SAEGroup]) throws {
        guard gridOption == architecture.sparsityControl.name else {
            throw SAEError("a \(architecture.name) sweep varies \(architecture.sparsityControl.name), not \(gridOption)")
        }
        try Self.checkGrid(values, option: gridOption)
        guard groups.count == values.count else {
            throw SAEError("a sweep of \(values.count) grid values needs \(values.count) SAE groups, got \(groups.count)")
        }
        let first = groups[0]
        for (i, group) in groups.enumerated() {
            for sae in group.saes where sae.config.architecture != architecture {
                throw SAEError("sweep group \(i) holds a \(sae.config.architecture.name) SAE in a \(architecture.name) sweep")
            }
            guard group.layers == first.layers, group.dims == first.dims,
                  group.saes.map(\.dSAE) == first.saes.map(\.dSAE) else {
                throw SAEError("sweep group \(i) (\(gridOption) = \(formatGridValue(values[i]))) does not have the layers and sizes of group 0")
            }
            for sae in group.saes where Self.gridValue(sae.config, option: gridOption) != Float(values[i]) {
                throw SAEError("sweep group \(i) has \(gridOption) = \(Self.gridValue(sae.config, option: gridOption)), but the grid says \(formatGridValue(values[i]))")
            }
        }
        self.architecture = architecture; self.gridOption = gridOption; self.values = values; self.groups = groups
    }

    /// Refuses an empty grid, duplicate values and values that are not finite.
    static func checkGrid(_ values: [Double], option: String) throws {
        guard !values.isEmpty else { throw SAEError("the \(option) grid is empty: give at least one value") }
        for (i, v) in values.enumerated() {
            guard v.isFinite else { throw SAEError("\(option) grid value \(i + 1) is not finite") }
            // Values are compared as the SAEs hold them (Float), so 1e-3 and 1.0000000001e-3 are one grid point.
            if let j = values[..<i].firstIndex(where: { Float($0) == Float(v) }) {
                throw SAEError("the \(option) grid holds \(formatGridValue(v)) twice (values \(j + 1) and \(i + 1))")
            }
        }
    }

    /// The grid option's value as an SAE's config holds it.
    static func gridValue(_ config: SAEConfig, option: String) -> Float {
        option == "alpha" ? config.alpha : Float(config.options[option] ?? .nan)
    }

    public enum SeedPolicy: String, Sendable, CaseIterable {
        /// Every grid point's SAE of layer i starts from seed + i (the same initial weights across the grid).
        case same
        /// Grid point g's SAE of layer i starts from seed + g·layers + i.
        case distinct
    }

    /// One fresh group per grid value from a template config (see `SAEGroup.make(template:…)`); each value is
    /// set through the architecture's own option setter and validated as `sae` would, so a value out of the
    /// option's range is refused with the kind's message, prefixed by which grid value it is.
    public static func make(template: SAEConfig, values: [Double], seeds: SeedPolicy = .same, dims: [Int], expansion: Int,
                            layerMeanNorms: [Float]? = nil, layers: [Int]? = nil, hookNames: [String]? = nil) throws -> SAESweep {
        let architecture = template.architecture
        let option = architecture.sparsityControl.name
        try checkGrid(values, option: option)
        let groups = try values.enumerated().map { g, value in
            var config = template
            do {
                try architecture.set(option, .number(value), in: &config)
                if seeds == .distinct {
                    let (offset, overflow) = UInt64(g).multipliedReportingOverflow(by: UInt64(dims.count))
                    guard !overflow else { throw SAEError("seed offset overflows") }
                    config.seed = template.seed &+ offset
                }
                return try SAEGroup.make(template: config, dims: dims, expansion: expansion, layerMeanNorms: layerMeanNorms,
                                         layers: layers, hookNames: hookNames)
            } catch let e as SAEError {
                throw SAEError("\(option) = \(formatGridValue(value)) (grid value \(g + 1)): \(e.message)")
            }
        }
        return try SAESweep(architecture: architecture, gridOption: option, values: values, groups: groups)
    }

    public var count: Int { groups.count }
    /// Every SAE of every group, group by group (the order the trainer steps them and checkpoints store them).
    public var allSAEs: [SAE] { groups.flatMap(\.saes) }
    /// Steps every SAE of the sweep has taken.
    public var stepsTrained: Int { groups.map(\.stepsTrained).min() ?? 0 }
    public var layers: [Int] { groups[0].layers }
    public subscript(i: Int) -> SAEGroup { groups[i] }
}

/// A grid value in its shortest decimal form (1e-3, not 0.0010000000474974513): the SAEs hold Floats.
public func formatGridValue(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
    return Float(value).description
}
