"""Local inputs for SAELens's training runner without downloads: a TransformerLens GPT-2 from a Hugging Face folder
(HookedTransformer.from_pretrained asks the Hub for the config, even with hf_model given) and a text dataset from a
local .txt or .jsonl file."""
import json
from pathlib import Path


def hooked_gpt2_from_folder(folder, device="cpu", processing="none"):
    """A HookedTransformer of the GPT-2 in `folder` (config.json, model.safetensors, vocab.json, merges.txt).

    processing="none" keeps Hugging Face numerics (nsae's default); "tl" applies TransformerLens's default weight
    processing (fold_ln, center_writing_weights, center_unembed), as nsae's `load gpt2 … processing=tl`."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    if processing not in ("none", "tl"):
        raise ValueError(f"processing must be 'none' or 'tl', got {processing!r}")
    folder = Path(folder)
    hf = json.loads((folder / "config.json").read_text())
    if hf.get("model_type") != "gpt2":
        raise ValueError(f"{folder / 'config.json'}: model_type is {hf.get('model_type')!r}, not 'gpt2'")
    cfg = HookedTransformerConfig(
        d_model=hf["n_embd"], d_head=hf["n_embd"] // hf["n_head"], n_heads=hf["n_head"],
        d_mlp=hf.get("n_inner") or 4 * hf["n_embd"], n_layers=hf["n_layer"], n_ctx=hf["n_positions"],
        eps=hf["layer_norm_epsilon"], d_vocab=hf["vocab_size"], act_fn=hf["activation_function"],
        use_attn_scale=hf.get("scale_attn_weights", True),
        scale_attn_by_inverse_layer_idx=hf.get("scale_attn_by_inverse_layer_idx", False),
        normalization_type="LN", original_architecture="GPT2LMHeadModel", model_name=folder.name, device=device,
        default_prepend_bos=True)
    # add_bos_token=True as TransformerLens would rebuild it (its rebuild reloads the tokenizer by name).
    tokenizer = GPT2TokenizerFast.from_pretrained(str(folder), add_bos_token=True)
    tokenizer.pad_token = tokenizer.eos_token
    model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    hf_model = GPT2LMHeadModel.from_pretrained(str(folder))
    processed = processing == "tl"
    model.load_and_process_state_dict(convert_gpt2_weights(hf_model, cfg), fold_ln=processed,
                                      center_writing_weights=processed, center_unembed=processed,
                                      fold_value_biases=processed)
    return model.to(device)


def text_dataset(path, field="text"):
    """A datasets.Dataset with a `text` column: a .jsonl file's `field`, or a .txt file's documents (separated by
    blank lines)."""
    from datasets import Dataset

    path = Path(path)
    if path.suffix == ".jsonl":
        texts = [json.loads(line)[field] for line in path.read_text().splitlines() if line.strip()]
    else:
        texts = [d.strip() for d in path.read_text().split("\n\n") if d.strip()]
    if not texts:
        raise ValueError(f"{path}: no documents")
    return Dataset.from_dict({"text": texts})
