"""`export SAE "train_saelens.py"`: the script nsae writes runs SAELens at tiny size (the tiny GPT-2 fixture, the
repo's small text, CPU) and its output folder loads back with `load sae`."""
import json
import subprocess
import sys

import pytest

from conftest import REPO, nsae_binary
from saelens_helpers import require_nsae_saelens

require_nsae_saelens()


def run_nsae(script, tmp_path, ok=True):
    path = tmp_path / "script.nsae"
    path.write_text(script)
    proc = subprocess.run([nsae_binary(), "run", str(path), "--json"], capture_output=True, text=True, timeout=600)
    assert (proc.returncode == 0) == ok, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_exported_script_trains_in_saelens_and_loads_back(tmp_path, shared_data):
    model = shared_data / "gpt2-tiny"
    if not (model / "model.safetensors").exists():
        pytest.skip(f"the tiny GPT-2 fixture is not at {model}")
    corpus = REPO / "notebooks" / "data" / "corpus.txt"
    script = tmp_path / "train_saelens.py"
    run_nsae(f'gpt2 = load gpt2 "{model}"\n'
             f'text = load text "{corpus}"\n'
             f'acts = harvest gpt2 text hook=resid_pre layers=0..1 tokens=500 context=32 out="{tmp_path / "acts"}"\n'
             f'n = sae nsae acts expansion=4 alpha=1e-6 sigma=0.5 mse=mean\n'
             f'train n acts steps=3 batch=64 lr=3e-3\n'
             f'export n "{script}" steps=4\n', tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), "--model", str(model), "--dataset", str(corpus), "--device", "cpu",
                           "--prompts-per-batch", "4", "--buffer-batches", "4", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hooks = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"]
    for hook in hooks:  # the experiment's settings reached SAELens's runner
        runner = json.loads((out / hook / "runner_cfg.json").read_text())
        assert (runner["hook_name"], runner["context_size"], runner["lr"], runner["train_batch_size_tokens"],
                runner["training_tokens"]) == (hook, 32, 0.003, 64, 4 * 64)
    results = run_nsae(f'acts = load acts "{tmp_path / "acts"}"\ng = load sae "{out}"\ng\neval g acts\n', tmp_path)
    group = results[2]["value"]
    assert group["architecture"] == "nsae"
    assert [(l["hook"], l["d_in"], l["d_sae"], l["alpha"], l["sigma"], l["mse"]) for l in group["layers"]] == \
        [(h, 32, 128, 1e-6, 0.5, "mean") for h in hooks]
    rows = results[3]["value"]["rows"]
    assert len(rows) == 2 and all(0 < r[1] <= 128 for r in rows)  # l0 of each layer's SAE on nsae's own harvest


def test_export_refuses_what_saelens_cannot_train(tmp_path):
    out = run_nsae(f'toy = synth d=8 features=16 active=2 layers=1 norms=[1] tokens=1k seed=1 out="{tmp_path / "toy"}"\n'
                   f'n = sae nsae toy expansion=2\n'
                   f'export n "{tmp_path / "t.py"}" steps=3\n', tmp_path, ok=False)
    assert "hook name" in out[-1]["error"] and "export" in out[-1]["error"]
    assert not (tmp_path / "t.py").exists()


@pytest.mark.parametrize("kind,options,config_class,fields", [
    ("relu", "alpha=2e-3", "StandardTrainingSAEConfig", {"l1_coefficient": 2e-3}),
    ("topk", "k=5", "TopKTrainingSAEConfig", {"k": 5}),
    ("jumprelu", "l0_coefficient=0.5", "JumpReLUTrainingSAEConfig", {"l0_coefficient": 0.5}),
])
def test_exported_config_is_accepted_by_saelens(tmp_path, shared_data, kind, options, config_class, fields):
    """Each kind's hyperparameters land in the SAELens training config class of that architecture."""
    import runpy
    model = shared_data / "gpt2-tiny"
    if not (model / "model.safetensors").exists():
        pytest.skip(f"the tiny GPT-2 fixture is not at {model}")
    script = tmp_path / "train_saelens.py"
    run_nsae(f'gpt2 = load gpt2 "{model}"\n'
             f'text = load text "{REPO / "notebooks" / "data" / "corpus.txt"}"\n'
             f'acts = harvest gpt2 text hook=mlp_out layers=1 tokens=200 context=16 out="{tmp_path / "acts"}"\n'
             f's = sae {kind} acts expansion=2 {options}\n'
             f'export s "{script}" tokens=1000\n', tmp_path)
    module = runpy.run_path(str(script), run_name="exported")
    assert module["SAE_CONFIG"].__name__ == config_class
    assert module["STEPS"] == 1 and module["BATCH_TOKENS"] == 4096  # tokens=1000 rounds up to one default batch
    (layer,) = module["LAYERS"]
    cfg = module["SAE_CONFIG"](**layer["sae"])
    assert (layer["hook_name"], cfg.architecture(), cfg.d_in, cfg.d_sae) == \
        ("blocks.1.hook_mlp_out", {"relu": "standard"}.get(kind, kind), 32, 64)
    for name, value in fields.items():
        assert getattr(cfg, name) == value
