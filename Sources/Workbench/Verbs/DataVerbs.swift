// Verbs over activation stores: harvest, synth, stats, top, feature, encode.
import GPT2

enum DataVerbs {
    static var all: [Verb] { [harvest, synth, stats, top, feature, encode] }

    static let encode = Verb(
        "encode", summary: "write an SAE's per-token codes over a store as a sparse matrix (CSR in safetensors, for numpy/scipy/PyTorch)",
        example: "encode norm acts layer=5 tokens=100k out=\"codes.safetensors\"",
        positionals: [.required("SAE", .object("sae"), "an SAE group"), .required("STORE", .object("store"), "an activation store")],
        options: [
            .required("layer", .integer, "the layer"),
            .optional("tokens", .integer, default: "whole store", "encode the first N non-BOS tokens"),
            .required("out", .path, "the .safetensors file to write: row_offsets I64 [N+1], feature I32, value F32 (CSR), token_ids, positions, document_index I32 [N], store_row I64 [N]"),
            .optional("strict", .bool, default: "false", "refuse, instead of warning, when the SAE's model_from_pretrained_kwargs and the store's model processing differ"),
        ],
        unavailable: EngineStatus.activations
    ) { call in try Engines.encodeCodes(call) }

    static let harvest = Verb(
        "harvest", summary: "run the model over a corpus and store activations at a hook point (shows progress)",
        example: "acts = harvest gpt2 web hook=mlp_out layers=0..11 tokens=2M context=128 out=\"acts/gpt2-mlp\"",
        positionals: [.required("MODEL", .object("model"), "a loaded model"),
                      .required("CORPUS", .object("corpus"), "a loaded corpus")],
        options: [
            .optional("hook", .hookName(HookPoint.Kind.allCases.map { $0.shortName ?? $0.rawValue } + ["hook_embed", "hook_pos_embed", "ln_final.hook_normalized"]),
                      default: "mlp_out",
                      "a TransformerLens hook name: within a block (`attn.hook_z`, `mlp.hook_post`, `ln2.hook_normalized`, or the short forms resid_pre, attn_out, resid_mid, mlp_out, resid_post) at layers=, a full name (`blocks.5.attn.hook_z`), or hook_embed, hook_pos_embed, ln_final.hook_scale, ln_final.hook_normalized; stored at its own width"),
            .optional("layers", .layers, default: "all layers", "the blocks to capture"),
            .optional("tokens", .integer, default: "1M", "how many tokens to harvest (whole context windows)"),
            .optional("context", .integer, default: "128", "context window length T (each window starts with BOS)"),
            .required("out", .path, "the store folder to write"),
            .optional("dtype", .word(["f32", "f16"]), default: "f32", "storage type of the activations"),
            .optional("batch", .integer, default: "8", "windows per forward pass"),
            .optional("overwrite", .bool, default: "false", "replace a store already at out= (once the new one is complete)"),
        ],
        unavailable: EngineStatus.activations
    ) { call in try Engines.harvest(call) }

    static let synth = Verb(
        "synth", summary: "a store of synthetic activations with known ground-truth features, one layer per norm scale",
        example: "toy = synth d=64 features=512 active=5 layers=4 norms=[1,4,16,64] tokens=20k seed=1 out=\"/tmp/toy\"",
        options: [
            .optional("d", .integer, default: "64", "activation dimension"),
            .optional("features", .integer, default: "512", "number of ground-truth features"),
            .optional("active", .number, default: "5", "mean number of active features per token"),
            .optional("layers", .integer, default: "number of norms", "number of layers"),
            .optional("norms", .numbers, default: "[1,4,16,64]", "the scale of each layer, not its norm: an active feature's magnitude is uniform in 0.5–1.5 × the scale, so a vector's mean norm is about √active × the scale (2.3× at active=5)"),
            .optional("tokens", .integer, default: "200k", "tokens per layer"),
            .optional("seed", .integer, default: "session seed", "random seed"),
            .required("out", .path, "the store folder to write"),
            .optional("overwrite", .bool, default: false, "replace a store already at out= (once the new one is complete)"),
        ],
        unavailable: EngineStatus.activations
    ) { call in try Engines.synth(call) }

    static let stats = Verb(
        "stats", summary: "per-layer statistics of ‖x‖ over non-BOS positions, and a figure of the norm distributions",
        example: "stats acts",
        positionals: [.required("STORE", .object("store"), "an activation store")],
        unavailable: EngineStatus.activations
    ) { call in try Engines.stats(call) }

    static let top = Verb(
        "top", summary: "the top-k activating tokens of a feature with their context, activation highlighted",
        example: "top norm acts layer=5 feature=123 k=20",
        positionals: [.required("SAE", .object("sae"), "an SAE group"), .required("STORE", .object("store"), "an activation store")],
        options: [
            .required("layer", .integer, "the layer"),
            .required("feature", .integer, "the feature index"),
            .optional("k", .integer, default: "20", "how many tokens (for nsae, ranked by the pre-activation, shown beside the tanh code that saturates at 1.0)"),
            .optional("context", .integer, default: "8", "tokens of context on each side"),
            .optional("tokens", .integer, default: "whole store", "scan at most this many tokens"),
            .optional("model", .object("model"), default: "any loaded model", "the model whose tokenizer shows the tokens"),
            .optional("strict", .bool, default: "false", "refuse, instead of warning, when the SAE's model_from_pretrained_kwargs and the store's model processing differ"),
        ],
        unavailable: EngineStatus.topK
    ) { call in try Engines.top(call) }

    static let feature = Verb(
        "feature", summary: "a feature card: density, activation histogram, decoder norm, top contexts, logit lens",
        example: "feature norm acts layer=5 id=123 model=gpt2",
        positionals: [.required("SAE", .object("sae"), "an SAE group"), .required("STORE", .object("store"), "an activation store")],
        options: [
            .required("layer", .integer, "the layer"),
            .required("id", .integer, "the feature index"),
            .optional("model", .object("model"), "a model, for the logit lens"),
            .optional("strict", .bool, default: "false", "refuse, instead of warning, when the SAE's model_from_pretrained_kwargs and the store's model processing differ"),
            .optional("k", .integer, default: "20", "how many top contexts (for nsae, ranked by the pre-activation, shown beside the tanh code)"),
            .optional("context", .integer, default: "8", "tokens of context on each side"),
            .optional("tokens", .integer, default: "whole store", "scan at most this many tokens"),
        ],
        unavailable: EngineStatus.topK
    ) { call in try Engines.feature(call) }
}
