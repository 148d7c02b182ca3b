import SAE

// Verbs that make, train, evaluate and save SAE groups.

enum SAEVerbs {
    static var all: [Verb] { [sae, train, eval, splice, compare, save] }

    /// The `sae` verb's kinds, options, help and completion come from the SAE registry.
    static let sae = Verb(
        "sae", summary: "a group of SAEs, one per layer of a store; KIND is one of \(SAERegistry.names.joined(separator: ", "))",
        example: "norm = sae nsae acts expansion=16 alpha=1e-6 sigma=1",
        positionals: [.required("KIND", .word(SAERegistry.names), "the architecture: " +
                                    SAERegistry.architectures.map { "\($0.name), \($0.summary)" }.joined(separator: "; ")),
                      .required("STORE", .object("store"), "the activations it will be trained on")],
        options: [
            .optional("layers", .layers, default: "all layers of the store", "which layers get an SAE"),
            .optional("expansion", .number, default: "16", "d_sae / d_in"),
            .optional("mse", .word(["sum", "mean"]), default: "sum", "reconstruction loss reduction"),
            .optional("init", .word(["unit", "scaled"]), default: "unit",
                      "unit: random unit decoder rows, W_enc = W_decᵀ, b_dec = 0; scaled (nsae only): decoder rows at the layer's mean ‖x‖, encoder rows at its inverse and b_dec at the data mean, so every layer starts at its own scale"),
            .optional("seed", .integer, default: "session seed", "initialization seed"),
        ] + architectureOptions,
        unavailable: EngineStatus.sae
    ) { call in try Engines.makeSAE(call) }

    /// Every architecture's own options, merged by name (the help says which kinds take each).
    static var architectureOptions: [Parameter] {
        var order: [String] = []
        var byName: [String: (option: SAEKindOption, kinds: [String], defaults: [String])] = [:]
        for a in SAERegistry.architectures {
            for o in a.options {
                if byName[o.name] == nil { order.append(o.name); byName[o.name] = (o, [], []) }
                byName[o.name]!.kinds.append(a.name)
                byName[o.name]!.defaults.append("\(o.defaultText) (\(a.name))")
            }
        }
        return order.map { name in
            let entry = byName[name]!
            let kind: ParameterKind
            switch entry.option.value {
            case .number: kind = .number
            case .integer: kind = .integer
            case .word(let words): kind = .word(words)
            }
            // The defaults are the SAE registry's, per kind: help shows them, and the architecture applies them.
            let same = Set(entry.defaults.map { $0.components(separatedBy: " (").first ?? $0 }).count == 1
            let defaults = entry.kinds.count == 1 || same ? entry.option.defaultText : entry.defaults.joined(separator: ", ")
            return Parameter(name: name, kind: kind, default: .described(defaults), required: false,
                             help: entry.option.help, onlyFor: entry.kinds)
        }
    }

    static let train = Verb(
        "train", summary: "train an SAE group or a sweep on a store; interruptible with Ctrl-C and resumable by running it again",
        example: "train norm acts tokens=2M",
        positionals: [.required("SAE", .objects(["sae", "sweep"]), "the SAE group, or a sweep (all its SAEs take the same batches, each read once)"),
                      .required("STORE", .object("store"), "training activations")],
        options: [
            .optional("steps", .integer, "number of optimizer steps; on a group that has trained already, that many more"),
            .optional("tokens", .integer, "number of training tokens (steps = tokens / batch, rounded up); on a trained group, that many more"),
            .optional("until", .integer, "train until the group has N steps in total (refused when it has N already)"),
            .optional("batch", .integer, default: "4096", "tokens per step"),
            .optional("lr", .number, default: "1e-3", "Adam learning rate"),
            .optional("warmup", .integer, default: "0", "linear learning-rate warm-up steps"),
            .optional("log_every", .integer, default: "100", "steps between log rows"),
            .optional("resample_every", .integer, default: "off",
                      "every N steps, resample the features that did not fire in those N steps (Anthropic's resampling; \(SAERegistry.architectures.filter(\.resamplesDeadFeatures).map(\.name).joined(separator: ", ")))"),
            .optional("checkpoint", .path, "a file to save the group or sweep, with its optimizer state, to when training stops"),
        ],
        groups: [.oneOf("steps", "tokens", "until", required: true)],
        unavailable: EngineStatus.training
    ) { call in try Engines.train(call) }

    static let eval = Verb(
        "eval", summary: "per-layer metrics: l0, l1, mse, explained variance, suppression, dead fraction, alive",
        example: "eval norm acts tokens=100k",
        positionals: [.required("SAE", .objects(["sae", "sweep"]), "the SAE group, or a sweep (a row per grid value and layer)"),
                      .required("STORE", .object("store"), "evaluation activations")],
        options: [.optional("tokens", .integer, default: "whole store", "evaluate on at most this many tokens")],
        unavailable: EngineStatus.training
    ) { call in try Engines.eval(call) }

    static let splice = Verb(
        "splice", summary: "downstream CE and KL with each layer's reconstruction spliced into the model",
        example: "splice norm gpt2 web tokens=50k",
        positionals: [.required("SAE", .object("sae"), "the SAE group"), .required("MODEL", .object("model"), "the model"),
                      .required("CORPUS", .object("corpus"), "the text")],
        options: [.optional("tokens", .integer, default: "10k", "tokens to evaluate"),
                  .optional("context", .integer, default: "the SAE's store's context, else 128", "context window length"),
                  .optional("strict", .bool, default: "false", "refuse, instead of warning, when the SAE's model_from_pretrained_kwargs and the model's processing differ")],
        unavailable: EngineStatus.splice
    ) { call in try Engines.splice(call) }

    static let compare = Verb(
        "compare", summary: "the eval metrics of several SAE groups side by side",
        example: "compare base norm",
        positionals: [.required("SAE", .object("sae"), "SAE groups to compare")], variadic: true,
        options: [.optional("store", .object("store"), default: "each group's training store", "evaluation activations"),
                  .optional("tokens", .integer, default: "whole store", "evaluate on at most this many tokens")],
        unavailable: EngineStatus.training
    ) { call in try Engines.compare(call) }

    static let save = Verb(
        "save", summary: "save an SAE group (SAELens folders), a sweep (a folder per grid value of SAELens folders, and sweep.json; `load sae` reads it back), a table (.csv or .json), or a figure or a result that showed one (.svg or .png)",
        example: "save norm \"saes/nsae-gpt2-mlp\"",
        positionals: [.required("VALUE", .value, "what to save: an SAE group, a table, a figure, or a result that showed figures (fit, stats, norms, cosine, feature)"),
                      .required("PATH", .path, "where: a folder for an SAE group; .csv or .json for a table; .svg or .png for a figure")]
    ) { call in try Saving.save(call) }
}
