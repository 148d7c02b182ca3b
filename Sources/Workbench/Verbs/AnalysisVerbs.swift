// Dictionary analysis verbs: features, logits, norms, cosine, fit, recovery.

enum AnalysisVerbs {
    static var all: [Verb] { [features, logits, norms, cosine, fit, recovery] }

    static let features = Verb(
        "features", summary: "table of one layer's features: norm, density, mean activation",
        example: "features norm layer=5 sort=density",
        positionals: [.required("SAE", .object("sae"), "the SAE group")],
        options: [
            .required("layer", .integer, "the layer"),
            .optional("sort", .word(["norm", "density", "id"]), default: "norm", "order of the rows (descending)"),
            .optional("top", .integer, default: "20", "how many rows"),
        ],
        unavailable: EngineStatus.sae
    ) { call in try Engines.features(call) }

    static let logits = Verb(
        "logits", summary: "tokens most promoted and suppressed by a feature's decoder direction (logit lens)",
        example: "logits norm gpt2 layer=5 feature=123",
        positionals: [.required("SAE", .object("sae"), "the SAE group"), .required("MODEL", .object("model"), "the model")],
        options: [
            .required("layer", .integer, "the layer"),
            .required("feature", .integer, "the feature index"),
            .optional("k", .integer, default: "10", "tokens each way"),
        ],
        unavailable: EngineStatus.logitLens
    ) { call in try Engines.logits(call) }

    static let norms = Verb(
        "norms", summary: "figure of decoder column-norm histograms per layer, and a table of quantiles",
        example: "norms norm",
        positionals: [.required("SAE", .object("sae"), "the SAE group")],
        unavailable: EngineStatus.sae
    ) { call in try Engines.norms(call) }

    static let cosine = Verb(
        "cosine", summary: "cosine-similarity distribution of sampled decoder pairs and of pillar vectors",
        example: "cosine norm layer=5",
        positionals: [.required("SAE", .object("sae"), "the SAE group")],
        options: [
            .optional("layer", .integer, default: "all layers", "one layer"),
            .optional("pairs", .integer, default: "1M", "sampled pairs of decoder columns"),
            .optional("pillars", .integer, default: "100", "pillar vectors"),
            .optional("seed", .integer, default: "session seed", "sampling seed"),
        ],
        unavailable: EngineStatus.dictionary
    ) { call in try Engines.cosine(call) }

    static let fit = Verb(
        "fit", summary: "slope, intercept, r, p of L0 against mean input norm across layers, and a figure; for a sweep, one fit per grid value",
        example: "fit norm acts",
        positionals: [.required("SAE", .objects(["sae", "sweep"]), "the SAE group, or a sweep (a row per grid value)"),
                      .required("STORE", .object("store"), "activations")],
        options: [.optional("tokens", .integer, default: "10k", "tokens per layer to measure L0 on")],
        unavailable: EngineStatus.training
    ) { call in try Engines.fit(call) }

    static let recovery = Verb(
        "recovery", summary: "per layer: mean max cosine similarity of the decoder to the ground-truth features",
        example: "recovery norm toy",
        positionals: [.required("SAE", .object("sae"), "the SAE group"), .required("STORE", .object("store"), "a synthetic store")],
        unavailable: EngineStatus.synthetic
    ) { call in try Engines.recovery(call) }
}
