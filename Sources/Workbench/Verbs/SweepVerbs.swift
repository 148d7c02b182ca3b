import SAE

// `sweep`: one SAE group per value of a kind's sparsity control. `train`, `save` and `load sae` take sweeps too.

enum SweepVerbs {
    static var all: [Verb] { [sweep] }

    /// The sparsity controls of the registered kinds, in registration order (alpha, k, l0_coefficient).
    static var gridOptions: [String] {
        var seen: [String] = []
        for a in SAERegistry.architectures where !seen.contains(a.sparsityControl.name) { seen.append(a.sparsityControl.name) }
        return seen
    }

    /// "alpha for relu and nsae, k for topk and batchtopk, l0_coefficient for jumprelu".
    static var gridOptionsByKind: String {
        gridOptions.map { option in
            let kinds = SAERegistry.architectures.filter { $0.sparsityControl.name == option }.map(\.name)
            return "\(option) for \(kinds.joined(separator: " and "))"
        }.joined(separator: ", ")
    }

    static let sweep = Verb(
        "sweep", summary: "a sweep: one SAE group per value of the kind's sparsity control (\(gridOptionsByKind))",
        usage: "sweep KIND STORE GRID=[v1, v2, …]|GRID=geom(lo, hi, n) [seeds=same|distinct] [sae options…]; GRID is \(gridOptionsByKind)",
        example: "s = sweep relu acts alpha=[1e-4, 3e-4, 1e-3, 3e-3] expansion=8",
        positionals: [.required("KIND", .word(SAERegistry.names), "the architecture, as for `sae`"),
                      .required("STORE", .object("store"), "the activations it will be trained on")],
        options: [
            .optional("layers", .layers, default: "all layers of the store", "which layers get an SAE (every grid point has one per layer)"),
            .optional("expansion", .number, default: "16", "d_sae / d_in"),
            .optional("mse", .word(["sum", "mean"]), default: "sum", "reconstruction loss reduction"),
            .optional("init", .word(["unit", "scaled"]), default: "unit", "as for `sae`"),
            .optional("seed", .integer, default: "session seed", "initialization seed"),
            .optional("seeds", .word(SAESweep.SeedPolicy.allCases.map(\.rawValue)), default: "same",
                      "same: every grid point's SAE of a layer starts from the same weights (seed + layer index), so the grid value is the only difference; distinct: grid point g uses seed + g·layers + layer index"),
        ] + architectureOptions,
        unavailable: EngineStatus.sae
    ) { call in try Engines.makeSweep(call) }

    /// `sae`'s architecture options; the numeric ones take any value here, so that the grid option can be a list
    /// (or `geom(lo, hi, n)`) and any other option given a list is refused by name rather than by type.
    static var architectureOptions: [Parameter] {
        SAEVerbs.architectureOptions.map { option in
            var copy = option
            switch option.kind {
            case .number, .integer:
                copy.kind = .value
                if gridOptions.contains(option.name) {
                    copy.help += "; the grid when it is the kind's sparsity control: a list [v1, v2, …] or geom(lo, hi, n)"
                    copy.`default` = .described("required as the grid of " + SAERegistry.architectures
                        .filter { $0.sparsityControl.name == option.name }.map(\.name).joined(separator: ", "))
                }
            default: break
            }
            return copy
        }
    }
}
