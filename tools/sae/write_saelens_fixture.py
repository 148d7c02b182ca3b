"""Writes Tests/SAETests/Fixtures/saelens_group: two SAE folders in SAELens's "standard" layout, written with numpy
only (the safetensors format is written by hand, independently of nsae's writer), plus expected.safetensors with
inputs and the codes and reconstructions numpy computes for them, SAELens's way:
    c = relu((x - b_dec) @ W_enc + b_enc)  (apply_b_dec_to_input true; without it, x @ W_enc + b_enc)
    x_hat = c @ W_dec + b_dec
Layer 3 uses SAELens v6's cfg (metadata block); layer 5 uses legacy top-level keys, apply_b_dec_to_input false,
and stores W_dec as float16 (its expected outputs use the float16-rounded values).
Usage: python3 tools/sae/write_saelens_fixture.py   (from the repo root)
"""
import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "SAETests", "Fixtures", "saelens_group")
DTYPES = {np.float32: "F32", np.float16: "F16"}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        raw = arr.tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype.type], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    rng = np.random.default_rng(2024)
    d_in, d_sae, n = 8, 24, 16
    expected = {}
    for layer, legacy in [(3, False), (5, True)]:
        w_dec = rng.standard_normal((d_sae, d_in)).astype(np.float32)
        w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
        w_enc = (w_dec.T * 0.8 + 0.1 * rng.standard_normal((d_in, d_sae))).astype(np.float32)
        b_enc = (rng.standard_normal(d_sae) * 0.2 - 0.1).astype(np.float32)
        b_dec = (rng.standard_normal(d_in) * 0.3).astype(np.float32)
        hook = f"blocks.{layer}.hook_mlp_out"
        folder = os.path.join(OUT, hook)
        os.makedirs(folder, exist_ok=True)
        if legacy:
            cfg = {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
                   "model_name": "gpt2", "hook_point": hook, "hook_point_layer": layer, "hook_point_head_index": None,
                   "apply_b_dec_to_input": False, "normalize_activations": "none", "context_size": 128,
                   "finetuning_scaling_factor": False, "sae_lens_training_version": "3.0.0"}
            w_dec_stored = w_dec.astype(np.float16)
            w_dec_used = w_dec_stored.astype(np.float32)
        else:
            cfg = {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
                   "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
                   "metadata": {"model_name": "gpt2", "hook_name": hook, "hook_head_index": None, "context_size": 128,
                                "prepend_bos": True, "dataset_path": "monology/pile-uncopyrighted",
                                "sae_lens_version": "6.18.0", "sae_lens_training_version": "6.18.0"}}
            w_dec_stored = w_dec
            w_dec_used = w_dec
        with open(os.path.join(folder, "cfg.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        write_safetensors(os.path.join(folder, "sae_weights.safetensors"),
                          {"W_enc": w_enc, "W_dec": w_dec_stored, "b_enc": b_enc, "b_dec": b_dec})
        density = rng.uniform(0, 0.1, d_sae)
        density[0] = 0
        write_safetensors(os.path.join(folder, "sparsity.safetensors"),
                          {"sparsity": np.log10(density + 1e-10).astype(np.float32)})
        x = (rng.standard_normal((n, d_in)) * 1.5).astype(np.float32)
        x64 = x.astype(np.float64)
        pre_in = x64 - b_dec if not legacy else x64
        c = np.maximum(pre_in @ w_enc.astype(np.float64) + b_enc, 0)
        x_hat = c @ w_dec_used.astype(np.float64) + b_dec
        expected[f"layer{layer}.x"] = x
        expected[f"layer{layer}.codes"] = c.astype(np.float32)
        expected[f"layer{layer}.recon"] = x_hat.astype(np.float32)
        expected[f"layer{layer}.density"] = density.astype(np.float32)
    write_safetensors(os.path.join(OUT, "..", "saelens_expected.safetensors"), expected)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
