"""Writes Tests/GPT2Tests/Fixtures/tlens_hooks.safetensors (+ tlens_hooks.json): every TransformerLens hook of the
tiny GPT-2 (../shared/data/gpt2-tiny, with its LayerNorm parameters and biases perturbed as stored under
"params.*"), as TransformerLens 3.x's HookedTransformer computes it, in two modes:

- `none`: `from_pretrained_no_processing` numerics (Hugging Face weights as they are), on the reference texts 0
  and 1 of gpt2-tiny/reference.json;
- `tl`: `from_pretrained`'s default processing (fold_ln, center_writing_weights, center_unembed,
  fold_value_biases), on text 0;

plus runs with one hook patched (a sub-module hook each), keeping blocks.1.hook_resid_post and the CE loss, so nsae's
patching can be compared with TransformerLens's. The model is built from the folder with HookedTransformerConfig +
convert_gpt2_weights (from_pretrained only accepts official model names); load_and_process_state_dict applies the
processing, exactly as from_pretrained does after loading.

Tensor layout (nsae's, one row per token): name "MODE.textN.HOOK" → [T, width]. q/k/v/z: [pos, head·d_head];
hook_result: [pos, head·d_model]; attn_scores/pattern: TransformerLens's [head, q, k] moved to [q, head·k];
hook_scale: [pos, 1]. "tl.text0.logits_head" holds the first 512 vocabulary columns of the processed logits.
Usage: /work/venv-tlens/bin/python tools/tlens/write_hook_fixture.py   (sae-lens / transformer-lens installed)
"""
import json
import os

import numpy as np
import torch
from importlib.metadata import version
from safetensors.numpy import save_file
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
from transformers import GPT2LMHeadModel

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..", "..")
TINY = os.path.join(REPO, "..", "shared", "data", "gpt2-tiny")
OUT = os.path.join(REPO, "Tests", "GPT2Tests", "Fixtures")


def build(hf, processing):
    c = hf.config
    cfg = HookedTransformerConfig(n_layers=c.n_layer, d_model=c.n_embd, n_heads=c.n_head, d_head=c.n_embd // c.n_head,
                                  d_mlp=4 * c.n_embd, n_ctx=c.n_positions, d_vocab=c.vocab_size, act_fn="gelu_new",
                                  normalization_type="LN", eps=c.layer_norm_epsilon,
                                  original_architecture="GPT2LMHeadModel", default_prepend_bos=False,
                                  dtype=torch.float32, device="cpu")
    model = HookedTransformer(cfg)
    state = convert_gpt2_weights(hf, cfg)
    flags = dict(fold_ln=processing, center_writing_weights=processing, center_unembed=processing,
                 fold_value_biases=processing)
    model.load_and_process_state_dict(state, **flags)
    model.set_use_attn_result(True)
    model.eval()
    return model


def per_token(name, t):
    """A cached value of batch 1 as nsae's [T, width]."""
    t = t[0].detach()
    if name.endswith(("hook_attn_scores", "hook_pattern")):
        t = t.permute(1, 0, 2)                      # [head, q, k] → [q, head, k]
    return t.reshape(t.shape[0], -1).float().numpy().copy()


def ce(logits, ids):
    return float(torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]))


# Patches applied to one hook each; nsae's test applies the same arithmetic (see PatchTests).
def patches(cfg):
    H, hs = cfg.n_heads, cfg.d_head

    def zero_head1_z(z, hook): z[:, :, 1, :] = 0; return z
    def uniform_pattern(p, hook):
        T = p.shape[-1]
        mask = torch.tril(torch.ones(T, T))
        return (mask / mask.sum(-1, keepdim=True)).expand_as(p).clone()
    def bos_scores(s, hook): s[..., 0] = s[..., 0] + 2.0; return s
    def double(x, hook): return x * 2
    def half(x, hook): return x * 0.5
    def zero(x, hook): return torch.zeros_like(x)
    def plus_half(x, hook): return x + 0.5
    def zero_head2_result(r, hook): r[:, :, 2, :] = 0; return r
    return [
        ("blocks.0.attn.hook_z", "zero head 1", zero_head1_z),
        ("blocks.1.attn.hook_pattern", "uniform over visible keys", uniform_pattern),
        ("blocks.0.attn.hook_attn_scores", "+2 at key 0", bos_scores),
        ("blocks.0.ln2.hook_scale", "times 2", double),
        ("blocks.1.mlp.hook_post", "zeros", zero),
        ("blocks.0.attn.hook_v", "plus 0.5", plus_half),
        ("blocks.0.attn.hook_q", "zeros", zero),
        ("blocks.1.attn.hook_k", "times 2", double),
        ("blocks.1.ln1.hook_normalized", "zeros", zero),
        ("hook_pos_embed", "zeros", zero),
        ("blocks.0.attn.hook_result", "zero head 2", zero_head2_result),
        ("blocks.0.mlp.hook_pre", "times 0.5", half),
        ("ln_final.hook_scale", "times 2", double),
    ]


def main():
    torch.manual_seed(0)
    ref = json.load(open(os.path.join(TINY, "reference.json")))
    hf = GPT2LMHeadModel.from_pretrained(TINY).eval()
    # gpt2-tiny is freshly initialized: LayerNorms are 1 and 0 and every bias is 0, which would leave fold_ln's and
    # fold_value_biases' arithmetic (and the biases' paths in the hooks) untested. Seeded perturbations make them
    # matter; they are stored as "params.<Hugging Face key>" for the test to apply to the same checkpoint.
    perturbed = {}
    generator = torch.Generator().manual_seed(16)
    with torch.no_grad():
        for name, p in hf.transformer.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            else:
                continue
            perturbed[f"params.{name}"] = p.detach().numpy().copy()
    tensors, meta = dict(perturbed), {"tool": f"transformer_lens {version('transformer-lens')} HookedTransformer",
                         "texts": [t["ids"] for t in ref["texts"][:2]], "hooks": [], "ce": {}, "patches": []}
    with torch.no_grad():
        for mode, texts in (("none", [0, 1]), ("tl", [0])):
            model = build(hf, processing=(mode == "tl"))
            for n in texts:
                ids = torch.tensor([ref["texts"][n]["ids"]])
                logits, cache = model.run_with_cache(ids)
                for name, value in cache.items():
                    if name.startswith("unembed."):  # the logits: large, and checked through ln_final and the CE
                        continue
                    tensors[f"{mode}.text{n}.{name}"] = per_token(name, value)
                    if name not in meta["hooks"]:
                        meta["hooks"].append(name)
                meta["ce"][f"{mode}.text{n}"] = ce(logits, ids)
                if mode == "tl":
                    tensors[f"tl.text{n}.logits_head"] = logits[0, :, :512].numpy().copy()
                if mode == "none" and n == 0:
                    for i, (hook, what, fn) in enumerate(patches(model.cfg)):
                        captured = {}
                        def keep(x, hook): captured["v"] = x.clone(); return x
                        out = model.run_with_hooks(ids, fwd_hooks=[(hook, fn), ("blocks.1.hook_resid_post", keep)])
                        tensors[f"patch{i}.blocks.1.hook_resid_post"] = per_token("resid", captured["v"])
                        meta["patches"].append({"hook": hook, "patch": what, "ce": ce(out, ids)})
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "tlens_hooks.safetensors"))
    with open(os.path.join(OUT, "tlens_hooks.json"), "w") as f:
        json.dump(meta, f, indent=1)
    size = os.path.getsize(os.path.join(OUT, "tlens_hooks.safetensors"))
    print(f"wrote {len(tensors)} tensors ({size / 1e6:.2f} MB), {len(meta['hooks'])} hook names, {len(meta['patches'])} patched runs")


if __name__ == "__main__":
    main()
