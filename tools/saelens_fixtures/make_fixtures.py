"""Writes the SAELens 6 fixtures of Tests/SAETests/Fixtures/saelens6 with SAELens itself.

Each case is a folder SAELens wrote (`save_model`, or `save_inference_model` for a trained BatchTopK SAE, which
SAELens saves as a jumprelu folder), or, for the pre-6.0 layouts, a cfg.json in the old key names beside weights
SAELens wrote, which SAELens 6 reads through its own `handle_pre_6_0_config`. For every case SAELens loads the
folder with `SAE.load_from_disk(dtype="float32")` and its `encode` / `decode` / forward on a fixed input are the
expected outputs (expected.safetensors: `<case>.x`, `<case>.codes`, `<case>.recon`). The one exception is the
pre-6.0 tanh-relu layout, which SAELens 6 silently reads as a plain ReLU SAE; its reference is computed here
from the formula, tanh(ReLU((x − b_dec)·W_enc + b_enc)).

Run:  python3 -m venv --system-site-packages /work/venv-saelens && /work/venv-saelens/bin/pip install sae-lens
      /work/venv-saelens/bin/python tools/saelens_fixtures/make_fixtures.py Tests/SAETests/Fixtures/saelens6

The other direction: `make_fixtures.py --roundtrip NSAE_BINARY [FIXTURES]` has nsae load every fixture folder and
save it again (`load sae` / `save`), then SAELens loads nsae's folders natively (`SAE.load_from_disk`) and must
give the fixture's expected outputs. (Not run in CI, which has no SAELens; the fixtures it checks are committed.)
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file, load_file

import sae_lens
from sae_lens import (SAE, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig, JumpReLUSAE, JumpReLUSAEConfig,
                      BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig)

D_IN, D_SAE, ROWS = 64, 64, 16


def randomize(sae, gen, threshold=False):
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(D_IN, D_SAE, generator=gen) * 0.3)
        sae.W_dec.copy_(torch.randn(D_SAE, D_IN, generator=gen) * 0.2)
        sae.b_enc.copy_(torch.randn(D_SAE, generator=gen) * 0.5 - 0.3)
        sae.b_dec.copy_(torch.randn(D_IN, generator=gen) * 0.4)
        if threshold:
            sae.threshold.copy_(torch.rand(D_SAE, generator=gen) * 0.8)
    return sae


def metadata(layer):
    return {"model_name": "gpt2", "hook_name": f"blocks.{layer}.hook_mlp_out"}


def main(out: Path):
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    gen = torch.Generator().manual_seed(2026)
    cases = {}

    def standard(**kw):
        cfg = StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, **kw)
        cfg.metadata.model_name = "gpt2"
        cfg.metadata.hook_name = "blocks.3.hook_mlp_out"
        return randomize(StandardSAE(cfg), gen)

    cases["standard"] = standard()
    cases["standard_no_bdec"] = standard(apply_b_dec_to_input=False)
    cases["standard_layer_norm"] = standard(normalize_activations="layer_norm")
    cases["standard_expected_average"] = standard(normalize_activations="expected_average_only_in")
    cases["standard_constant_norm"] = standard(normalize_activations="constant_norm_rescale")
    cases["standard_f16"] = standard(dtype="float16")
    cases["standard_bf16"] = standard(dtype="bfloat16")
    topk_cfg = TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=8)
    topk_cfg.metadata.hook_name = "blocks.4.hook_resid_post"
    cases["topk"] = randomize(TopKSAE(topk_cfg), gen)
    jump_cfg = JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE)
    jump_cfg.metadata.hook_name = "blocks.5.hook_mlp_out"
    cases["jumprelu"] = randomize(JumpReLUSAE(jump_cfg), gen, threshold=True)

    for name, sae in cases.items():
        if name in ("standard_f16", "standard_bf16"):
            sae = sae.to(dtype={"standard_f16": torch.float16, "standard_bf16": torch.bfloat16}[name])
        sae.save_model(out / name)

    # A BatchTopK SAE after training, saved as SAELens saves it: a jumprelu folder with the global threshold.
    btk_cfg = BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=8)
    btk = BatchTopKTrainingSAE(btk_cfg)
    randomize(btk, gen)
    btk.topk_threshold = torch.tensor(0.37, dtype=torch.double)
    btk.save_inference_model(out / "batchtopk_trained")

    # Pre-6.0 layouts: old key names, TopK as an activation function, tanh-relu.
    legacy = {
        "legacy_topk": {"activation_fn_str": "topk", "activation_fn_kwargs": {"k": 8}},
        "legacy_relu": {"activation_fn_str": "relu"},
        "legacy_tanh_relu": {"activation_fn_str": "tanh-relu"},
    }
    for name, extra in legacy.items():
        sae = randomize(StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE)), gen)
        sae.save_model(out / name)
        cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
               "model_name": "gpt2", "hook_point": "blocks.6.hook_mlp_out", "hook_point_layer": 6,
               "apply_b_dec_to_input": True, "normalize_activations": False, "sae_lens_training_version": "3.13.0",
               **extra}
        (out / name / "cfg.json").write_text(json.dumps(cfg))

    expected = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        name = folder.name
        x = torch.randn(ROWS, D_IN, generator=gen) * 2 + 0.5
        sae = SAE.load_from_disk(folder, dtype="float32")
        with torch.no_grad():
            if name == "legacy_tanh_relu":
                w = load_file(folder / "sae_weights.safetensors")
                codes = torch.tanh(torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]))
                recon = codes @ w["W_dec"] + w["b_dec"]
            else:
                codes = sae.encode(x)
                recon = sae(x)
                if sae.cfg.normalize_activations in ("none", "expected_average_only_in"):
                    assert torch.allclose(recon, sae.decode(codes))
        expected[f"{name}.x"] = x.contiguous()
        expected[f"{name}.codes"] = codes.float().contiguous()
        expected[f"{name}.recon"] = recon.float().contiguous()
        print(f"{name:28s} {type(sae).__name__:12s} L0 {float((codes > 0).float().sum(-1).mean()):6.2f}")
    save_file(expected, out / "expected.safetensors", metadata={"sae_lens_version": sae_lens.__version__,
                                                                "torch_version": torch.__version__})


def roundtrip(nsae: str, fixtures: Path):
    import subprocess
    import tempfile
    expected = load_file(fixtures / "expected.safetensors")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = sorted(p.name for p in fixtures.iterdir() if p.is_dir())
        script = "\n".join(f'a{i} = load sae "{fixtures / c}"\nsave a{i} "{tmp / c}"' for i, c in enumerate(cases))
        (tmp / "roundtrip.nsae").write_text(script + "\n")
        subprocess.run([nsae, "run", str(tmp / "roundtrip.nsae")], check=True, capture_output=True)
        for c in cases:
            (folder,) = [p for p in (tmp / c).iterdir() if p.is_dir()]
            if c == "legacy_tanh_relu":
                # nsae keeps it as an nsae folder (architecture "nsae"), which SAELens has no class for.
                print(f"{c:28s} skipped: SAELens 6 has no tanh-relu architecture")
                continue
            sae = SAE.load_from_disk(folder, dtype="float32")
            x = expected[f"{c}.x"]
            with torch.no_grad():
                codes, recon = sae.encode(x), sae(x)
            err_c = (codes - expected[f"{c}.codes"]).abs().max().item()
            err_r = (recon - expected[f"{c}.recon"]).abs().max().item()
            ok = err_c < 1e-4 and err_r < 1e-4
            failures += not ok
            print(f"{c:28s} {type(sae).__name__:12s} max |Δcodes| {err_c:.2e}  max |Δrecon| {err_r:.2e}  {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--roundtrip":
        roundtrip(sys.argv[2], Path(sys.argv[3] if len(sys.argv) > 3 else "Tests/SAETests/Fixtures/saelens6"))
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "Tests/SAETests/Fixtures/saelens6"))
