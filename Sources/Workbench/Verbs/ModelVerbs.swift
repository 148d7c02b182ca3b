// Verbs over GPT-2 models: load (all kinds), tokenize, run.
import Activations
import GPT2
import SAE

enum ModelVerbs {
    static var all: [Verb] { [load, tokenize, runModel] }

    static let load = Verb(
        "load", summary: "load a model (gpt2), a text corpus (text), activations (acts) or an SAE group (sae)",
        example: "gpt2 = load gpt2 \"models/gpt2\"",
        positionals: [
            .required("KIND", .word(["gpt2", "text", "acts", "sae"]), "what to load. sae: a folder SAELens or nsae wrote (one SAE, a folder of layers, or a saved sweep) of an architecture nsae reads exactly: " +
                        SAERegistry.architectures.map { "\($0.name) (SAELens `\($0.saelensName)`)" }.joined(separator: ", ") +
                        "; also SAELens's pre-6.0 layout (activation_fn relu, topk with its k, tanh-relu), f16/bf16 weights and normalize_activations none, expected_average_only_in, constant_norm_rescale or layer_norm; anything else is refused naming the field"),
            .required("PATH", .pathOrWord(["builtin"]), "a file or folder; `builtin` for the bundled GPT-2; for acts, a store folder, or a .npy or .safetensors file read in place (nothing is written beside it)"),
        ],
        options: [
            .optional("field", .string, default: "\"text\"", "the JSON field holding the text in a .jsonl corpus").only("text"),
            .optional("processing", .word(WeightProcessing.allCases.map(\.rawValue)), default: "none",
                      "`tl` applies TransformerLens's from_pretrained defaults (fold_ln, center_writing_weights, center_unembed, fold_value_biases), as the SAELens GPT-2 SAEs expect; `none` keeps Hugging Face numerics").only("gpt2"),
            .optional("special", .bool, default: false, "read the literal <|endoftext|> as the token 50256, as Hugging Face and TransformerLens do (false: as text, like tiktoken's encode_ordinary)").only("text"),
            .optional("split", .word(Corpus.Split.allCases.map(\.rawValue)), default: "file for a folder, blank for a .txt",
                      "how text files are cut into documents: a whole file, blank-line separated, or one per line").only("text"),
            .optional("incomplete", .bool, default: false, "load a store whose writing was interrupted (its summary says incomplete)").only("acts"),
        ]
    ) { call in
        guard case .string(let kind) = call.arguments[0], case .string(let path) = call.arguments[1] else {
            throw call.error("load expects a kind and a path")
        }
        if path == "builtin" && kind != "gpt2" {
            throw call.error(atArgument: 1, "`builtin` exists only for `load gpt2`; give a path in double quotes")
        }
        // Options of other kinds (field= on `load gpt2`…) were refused by the declaration (`only`).
        switch kind {
        case "gpt2":
            return try Engines.loadModel(path, processing: WeightProcessing(rawValue: try call.requiredString("processing")) ?? .none,
                                         call: call)
        case "text":
            return try Engines.loadCorpus(path, field: try call.requiredString("field"),
                                          split: call.string("split").flatMap(Corpus.Split.init(rawValue:)),
                                          special: call.flag("special"), call: call)
        case "acts": return try Engines.loadStore(path, call: call)
        default: return try Engines.loadSAE(path, call: call)
        }
    }

    static let tokenize = Verb(
        "tokenize", summary: "table of a text's token ids (position, id, token), exactly as the tokenizer gives them, no BOS",
        example: "tokenize gpt2 \"Hello world\"",
        positionals: [.required("MODEL", .object("model"), "a loaded model"), .required("TEXT", .string, "the text")],
        options: [.optional("special", .bool, default: "false", "read the literal <|endoftext|> as the token 50256, as Hugging Face and TransformerLens do (default: as text, like tiktoken's encode_ordinary)")],
        unavailable: EngineStatus.gpt2
    ) { call in
        try Engines.tokenize(call)
    }

    static let runModel = Verb(
        "run", summary: "run the model on a text: the ids fed, mean next-token CE loss, top predictions per position",
        example: "r = run gpt2 \"The cat sat on the\" top=5",
        positionals: [.required("MODEL", .object("model"), "a loaded model"), .required("TEXT", .string, "the text")],
        options: [
            .optional("top", .integer, default: "5", "how many top next-token ids to report per position"),
            .optional("bos", .bool, default: "true", "prepend 50256 as TransformerLens does"),
            .optional("special", .bool, default: "false", "read the literal <|endoftext|> as the token 50256, as Hugging Face and TransformerLens do (default: as text, like tiktoken's encode_ordinary)"),
        ],
        unavailable: EngineStatus.gpt2
    ) { call in
        try Engines.runModel(call)
    }
}
