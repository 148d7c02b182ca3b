import Foundation
import SAE

// `export SAE "train_saelens.py" [steps=N] [tokens=N] [dataset="…"]`: a runnable SAELens training script for the same
// experiment, so a study prototyped here scales to GPUs there and comes back with `load sae`.

enum ExportVerb {
    static let export = Verb(
        "export", summary: "write a runnable SAELens training script for the same experiment (one SAE per layer, NSAE through the nsae_saelens package in python/)",
        example: "export norm \"train_saelens.py\" tokens=100M",
        positionals: [.required("SAE", .object("sae"), "the SAE group whose architecture, hyperparameters and hooks the script trains"),
                      .required("PATH", .path, "the .py file to write")],
        options: [
            .optional("steps", .integer, default: "the steps the group has trained", "optimizer steps per SAE"),
            .optional("tokens", .integer, "training tokens per SAE"),
            .optional("dataset", .string, default: "none: the script asks for --dataset", "the script's default dataset: a Hugging Face name or a local .txt/.jsonl"),
        ],
        groups: [.oneOf("steps", "tokens")]
    ) { call in try write(call) }

    static func write(_ call: Call) throws -> Value {
        let object = try call.object(0, as: SAEObject.self)
        guard case .string(let path) = call.arguments[1] else { throw call.error(atArgument: 1, "expected a path") }
        guard path.hasSuffix(".py") else { throw call.error(atArgument: 1, "the script is a .py file; `\(path)` is not") }
        let training = object.lastTraining ?? TrainingSettings(batch: 4096, lr: 1e-3, warmup: 0)
        var steps = object.group.stepsTrained
        // The declaration's one-of group has refused steps= together with tokens= before this runs.
        if let s = call.integer("steps") {
            guard s >= 1 else { throw call.error(atOption: "steps", "steps must be at least 1, found \(s)") }
            steps = s
        } else if let t = call.integer("tokens") {
            guard t >= 1 else { throw call.error(atOption: "tokens", "tokens must be at least 1, found \(t)") }
            steps = t / training.batch + (t % training.batch == 0 ? 0 : 1)
        } else {
            guard steps >= 1 else { throw call.error("the group has not been trained yet: give steps=N or tokens=N") }
        }
        let script = try SAELensScript(object: object, training: training, steps: steps, dataset: call.string("dataset"),
                                       call: call).text
        try Saving.write(script, to: URL(fileURLWithPath: path), call: call)
        return .string(path)
    }
}

/// The Python text of the exported script.
struct SAELensScript {
    let text: String

    /// A TransformerLens hook name, as `harvest` records them (`blocks.5.hook_mlp_out`, `hook_embed`, …).
    static func isModelHook(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count >= 3, parts[0] == "blocks", Int(parts[1]) != nil { return parts.last!.hasPrefix("hook_") }
        return ["hook_embed", "hook_pos_embed", "ln_final.hook_normalized", "ln_final.hook_scale"].contains(name)
    }

    init(object: SAEObject, training: TrainingSettings, steps: Int, dataset: String?, call: Call) throws {
        let group = object.group
        let first = group.saes[0].config
        let kind = first.architecture.name
        var mapping: SAELensTraining?
        var layers: [String] = []
        for (i, sae) in group.saes.enumerated() {
            let c = sae.config
            guard c.architecture.name == kind else { throw call.error(atArgument: 0, "export: the group mixes \(kind) and \(c.architecture.name) SAEs") }
            guard let hook = c.hookName, SAELensScript.isModelHook(hook) else {
                throw call.error(atArgument: 0, "export: layer \(group.layers[i]) has no hook name of a model (\(c.hookName ?? "none"): synthetic or imported activations), so SAELens would not know where to read its activations; harvest them from a model first")
            }
            if c.normalization != .none {
                throw call.error(atArgument: 0, "export: normalize_activations \(c.normalization.rawValue) of layer \(group.layers[i]) is not exported (nsae reads it, SAELens trains it differently)")
            }
            let fields: [String]
            do {
                guard let training = try c.architecture.saelensTraining(c) else {
                    throw SAEError("export: SAELens has no training configuration for a \(kind) SAE")
                }
                mapping = training
                fields = try training.fields.map { "\($0.name)=\(try Python.literal($0.name, $0.value))" }
            } catch {
                throw call.error(atArgument: 0, "\(error) (layer \(group.layers[i]))")
            }
            layers.append("    {\"hook_name\": \(Python.string(hook)), \"sae\": dict(d_in=\(c.dIn), d_sae=\(c.dSAE), \(fields.joined(separator: ", ")))},")
        }
        guard let mapping else { throw call.error(atArgument: 0, "export: the group has no SAEs") }
        let model = object.store?.store.manifest.model ?? first.modelName ?? "gpt2"
        let context = object.store.map { $0.store.contextLength } ?? 128
        let summary = "\(group.count) × \(kind) SAE\(group.count == 1 ? "" : "s") (d_in \(first.dIn) → d_sae \(first.dSAE)), trained in nsae for \(group.stepsTrained) steps"
        text = """
        #!/usr/bin/env python3
        \"\"\"SAELens training script exported by nsae (`export SAE "…py"`): the same experiment, one SAE per hook.

        Experiment: \(summary).
        Each hook's SAE is trained by SAELens's LanguageModelSAETrainingRunner and saved to OUT/<hook name>/, a folder
        of SAELens folders that nsae reads back as one group: `g = load sae "OUT"`, then splice, inspect and compare.

        Set up:  pip install sae-lens ./python        (python/ of the nsae repository: the nsae_saelens package)
        Run:     python \(URL(fileURLWithPath: "train_saelens.py").lastPathComponent) --dataset monology/pile-uncopyrighted --device cuda
        Local:   --model path/to/hf-gpt2-folder --dataset corpus.txt     (no download: a Hugging Face GPT-2 folder,
                 a .txt file of blank-line separated documents or a .jsonl file with a "text" field)
        \"\"\"
        import argparse
        from pathlib import Path

        import torch

        import nsae_saelens  # noqa: F401  registers the nsae architecture with SAELens
        from nsae_saelens.local import hooked_gpt2_from_folder, text_dataset
        from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig
        from \(mapping.module) import \(mapping.className)

        MODEL = \(Python.string(model))
        DATASET = \(dataset.map(Python.string) ?? "None")
        CONTEXT_SIZE = \(context)
        BATCH_TOKENS = \(training.batch)
        LR = \(Python.literal(training.lr) ?? "1e-3")
        LR_WARM_UP_STEPS = \(training.warmup)
        STEPS = \(steps)
        # \(mapping.note)
        SAE_CONFIG = \(mapping.className)
        LAYERS = [
        \(layers.joined(separator: "\n"))
        ]


        def main():
            parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
            parser.add_argument("--model", default=MODEL, help="a TransformerLens model name, or a local Hugging Face GPT-2 folder")
            parser.add_argument("--dataset", default=DATASET, help="a Hugging Face dataset, or a local .txt/.jsonl file")
            parser.add_argument("--tokenized", action="store_true", help="the Hugging Face dataset is already tokenized")
            parser.add_argument("--steps", type=int, default=STEPS, help="optimizer steps per SAE")
            parser.add_argument("--tokens", type=int, help="training tokens per SAE (instead of --steps)")
            parser.add_argument("--batch", type=int, default=BATCH_TOKENS, help="tokens per step")
            parser.add_argument("--lr", type=float, default=LR)
            parser.add_argument("--context-size", type=int, default=CONTEXT_SIZE)
            parser.add_argument("--prompts-per-batch", type=int, default=32, help="SAELens store_batch_size_prompts")
            parser.add_argument("--buffer-batches", type=int, default=20, help="SAELens n_batches_in_buffer")
            parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
            parser.add_argument("--out", default="saelens-out", help="folder of the trained SAEs, one folder per hook")
            parser.add_argument("--wandb", action="store_true", help="log to Weights & Biases")
            parser.add_argument("--seed", type=int, default=1)
            args = parser.parse_args()
            if not args.dataset:
                parser.error("give --dataset (a Hugging Face dataset, or a local .txt/.jsonl file)")
            local_model = Path(args.model).is_dir()
            model = hooked_gpt2_from_folder(args.model, device=args.device) if local_model else None
            local_data = Path(args.dataset).is_file()
            tokens = args.tokens or args.steps * args.batch
            for layer in LAYERS:
                cfg = LanguageModelSAERunnerConfig(
                    sae=SAE_CONFIG(**layer["sae"], device=args.device),
                    model_name=Path(args.model).name if local_model else args.model,
                    hook_name=layer["hook_name"],
                    dataset_path="local" if local_data else args.dataset,
                    is_dataset_tokenized=args.tokenized and not local_data,
                    streaming=not local_data,
                    context_size=args.context_size,
                    training_tokens=tokens,
                    train_batch_size_tokens=args.batch,
                    lr=args.lr,
                    lr_warm_up_steps=LR_WARM_UP_STEPS,
                    store_batch_size_prompts=args.prompts_per_batch,
                    n_batches_in_buffer=args.buffer_batches,
                    device=args.device,
                    seed=args.seed,
                    logger=LoggingConfig(log_to_wandb=args.wandb),
                    output_path=str(Path(args.out) / layer["hook_name"].replace("/", "_")),
                    checkpoint_path=None,
                    n_checkpoints=0,
                )
                runner = LanguageModelSAETrainingRunner(
                    cfg, override_model=model, override_dataset=text_dataset(args.dataset) if local_data else None)
                runner.run()
                print(f"trained {layer['hook_name']} -> {cfg.output_path}", flush=True)


        if __name__ == "__main__":
            main()

        """
    }
}

/// Python source literals.
enum Python {
    static func literal(_ value: Double) -> String? {
        guard value.isFinite else { return nil }
        return formatNumber(value)
    }

    /// A SAELens training field's value; a number that Python cannot read back exactly (inf, nan) is refused.
    static func literal(_ field: String, _ value: SAELensTraining.Value) throws -> String {
        switch value {
        case .string(let text): return string(text)
        case .number(let v):
            guard let text = literal(v) else { throw SAEError("export: \(field) is \(v), not a finite number") }
            return text
        }
    }

    static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += String(format: "\\x%02x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
