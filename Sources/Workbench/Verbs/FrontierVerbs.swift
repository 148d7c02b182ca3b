// Sparsity–fidelity frontiers: frontier, match; and pick, one grid point of a sweep for the one-group verbs.

enum FrontierVerbs {
    static var all: [Verb] { [frontier, match, pick] }

    static let metricOption = Parameter.optional("metric", .word(Engines.FrontierMetric.allCases.map(\.rawValue)),
                                                 default: "explained_variance",
                                                 "the metric against L0: explained_variance or mse on the store; ce_score, (CE_zero − CE_spliced)/(CE_zero − CE_clean) as SAELens defines it, or kl_score, spliced into model= on corpus= (L0 then counted on the spliced positions); splice results already measured for an SAE at its current step are reused")
    /// Where the metrics are measured: shared by frontier and match.
    static let measuringOptions: [Parameter] = [
        metricOption,
        .optional("layer", .integer, default: "every layer", "one layer"),
        .optional("store", .object("store"), default: "each group's training store", "activations for explained_variance and mse"),
        .optional("model", .object("model"), "the model to splice into (ce_score, kl_score)"),
        .optional("corpus", .object("corpus"), "the text to splice on (ce_score, kl_score)"),
        .optional("tokens", .integer, default: "whole store; 10k for a splice", "tokens to measure on"),
        .optional("context", .integer, default: "the store's context", "context window length of a splice"),
        .optional("strict", .bool, default: "false", "refuse, instead of warning, when an SAE's model_from_pretrained_kwargs and the model's processing differ"),
    ]

    static let frontier = Verb(
        "frontier", summary: "L0 against a metric for each SAE of one or more sweeps, per layer: a table and one figure per layer (L0 on a log axis)",
        example: "frontier relu_s nsae_s metric=ce_score model=gpt2 corpus=heldout tokens=8k",
        positionals: [.required("SWEEP", .objects(["sweep", "sae"]), "sweeps, or SAE groups (one point each)")], variadic: true,
        options: measuringOptions,
        unavailable: EngineStatus.training
    ) { call in try Engines.frontier(call) }

    static let match = Verb(
        "match", summary: "two sweeps compared at equal L0 per layer: rows `matched` (both metrics interpolated log-linearly in L0 at each grid point's L0 inside the common range), `no_overlap` (when the ranges do not meet) and `nearest` (the actual pair closest in L0, with the larger L0 over the smaller)",
        example: "match relu_s nsae_s",
        positionals: [.required("A", .objects(["sweep", "sae"]), "a sweep, or an SAE group"), .required("B", .objects(["sweep", "sae"]), "a sweep, or an SAE group")],
        options: measuringOptions,
        unavailable: EngineStatus.training
    ) { call in try Engines.match(call) }

    static let pick = Verb(
        "pick", summary: "one grid point of a sweep as an SAE group (sharing the sweep's SAEs), for the verbs that take one group: compare, splice, features, top, feature …",
        example: "base = pick relu_s alpha=1e-3",
        positionals: [.required("SWEEP", .object("sweep"), "the sweep")],
        options: SweepVerbs.gridOptions.map { .optional($0, .number, "the grid value, when the sweep varies \($0)") },
        unavailable: EngineStatus.sae
    ) { call in try Engines.pick(call) }
}
