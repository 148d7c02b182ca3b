"""nsae and SAELens 6 (with python/nsae_saelens) on the same folders: nsae-saved relu and nsae SAEs load in SAELens
and give nsae's numbers; an NSAE trained by SAELens's LanguageModelSAETrainingRunner loads back in nsae with SAELens's
numbers. The numbers compared are nsae's `eval` (l0, l1, mse, explained variance, suppression over every row of an
activation file), which depend on every code and every reconstruction."""
import json
import subprocess

import numpy as np
import pytest

from conftest import REPO, nsae_binary
from saelens_helpers import require_nsae_saelens

nsae_saelens, sae_lens, torch = require_nsae_saelens()

METRICS = ("l0", "l1", "mse", "explained_variance", "suppression")


def run_nsae(script, tmp_path):
    path = tmp_path / "script.nsae"
    path.write_text(script)
    proc = subprocess.run([nsae_binary(), "run", str(path), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def eval_rows(statement):
    value = statement["value"]
    return [dict(zip(value["columns"], row)) for row in value["rows"]]


def saelens_metrics(folder, x):
    """The metrics nsae's `eval` reports, computed from SAELens's encode and forward in float64."""
    sae = sae_lens.SAE.load_from_disk(str(folder), dtype="float32")
    with torch.no_grad():
        codes, recon = sae.encode(torch.from_numpy(x)).double().numpy(), sae(torch.from_numpy(x)).double().numpy()
    x = x.astype(np.float64)
    err = ((recon - x) ** 2).sum(axis=1)
    return sae, {"l0": (codes > 0).sum(axis=1).mean(), "l1": np.abs(codes).sum(axis=1).mean(), "mse": err.mean(),
                 "explained_variance": 1 - err.sum() / ((x - x.mean(axis=0)) ** 2).sum(),
                 "suppression": (np.linalg.norm(recon, axis=1) / np.linalg.norm(x, axis=1)).mean()}


def assert_close(ours, theirs, rel=1e-5):
    for m in METRICS:
        assert abs(ours[m] - theirs[m]) <= rel * max(abs(theirs[m]), 1e-12), (m, ours[m], theirs[m])


def activations(tmp_path, rows=2000, d=16, seed=0):
    """Rows with norms spread over a factor of ~10 (where a relu SAE and an NSAE differ)."""
    g = np.random.default_rng(seed)
    x = (g.standard_normal((rows, d)) * np.exp(g.standard_normal((rows, 1)) * 0.5) * 3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return x


@pytest.mark.parametrize("kind,options,cls", [("relu", "alpha=1e-3", "StandardSAE"),
                                              ("nsae", "alpha=1e-6 sigma=1", "NSAE")])
def test_nsae_saved_folder_loads_in_saelens_with_nsae_numbers(tmp_path, kind, options, cls):
    x = activations(tmp_path)
    out = run_nsae(f'acts = load acts "{tmp_path / "x.npy"}"\n'
                   f's = sae {kind} acts expansion=4 {options} seed=3\n'
                   f'train s acts steps=150 batch=256 lr=1e-2\n'
                   f'save s "{tmp_path / "saved"}"\n'
                   f'eval s acts\n', tmp_path)
    (ours,) = eval_rows(out[-1])
    (folder,) = [p for p in (tmp_path / "saved").iterdir() if p.is_dir()]
    sae, theirs = saelens_metrics(folder, x)
    assert type(sae).__name__ == cls
    assert 0 < ours["l0"] < 64 and ours["explained_variance"] > 0.3  # trained, sparse, not trivial
    assert_close(ours, theirs)


def test_saelens_trained_nsae_loads_back_in_nsae(tmp_path):
    """A few steps of SAELens's runner on the tiny GPT-2 fixture and the repo's small text (no download)."""
    from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig
    from nsae_saelens.local import hooked_gpt2_from_folder, text_dataset

    model_folder = REPO.parent / "shared" / "data" / "gpt2-tiny"
    if not (model_folder / "model.safetensors").exists():
        pytest.skip(f"the tiny GPT-2 fixture is not at {model_folder}")
    torch.manual_seed(0)
    model = hooked_gpt2_from_folder(model_folder)
    hook = "blocks.1.hook_resid_pre"
    cfg = LanguageModelSAERunnerConfig(
        sae=nsae_saelens.NSAETrainingConfig(d_in=32, d_sae=128, alpha=1e-4, noise_sigma=0.5, mse="mean"),
        model_name="gpt2-tiny", hook_name=hook, dataset_path="local", is_dataset_tokenized=False, streaming=False,
        context_size=16, training_tokens=64 * 30, train_batch_size_tokens=64, store_batch_size_prompts=4,
        n_batches_in_buffer=4, lr=1e-3, device="cpu", logger=LoggingConfig(log_to_wandb=False),
        output_path=str(tmp_path / "trained"), checkpoint_path=None, n_checkpoints=0, n_batches_for_norm_estimate=10,
        verbose=False, seed=1)
    trained = LanguageModelSAETrainingRunner(cfg, override_dataset=text_dataset(REPO / "notebooks" / "data" / "corpus.txt"),
                                             override_model=model).run()
    assert isinstance(trained, nsae_saelens.NSAETrainingSAE)
    with torch.no_grad():  # it trained: SAELens's initialisation ties W_enc to W_decᵀ and starts b_enc at 0
        assert (trained.W_enc - trained.W_dec.T).abs().max() > 1e-3 and trained.b_enc.abs().max() > 1e-4
        ids = model.to_tokens((REPO / "notebooks" / "data" / "corpus.txt").read_text(), prepend_bos=False,
                             truncate=False)[0]
        chunks = ids[: len(ids) // 63 * 63].reshape(-1, 63)
        bos = torch.full((len(chunks), 1), model.tokenizer.bos_token_id)
        _, cache = model.run_with_cache(torch.cat([bos, chunks], dim=1), names_filter=hook)
    x = cache[hook][:, 1:].reshape(-1, 32).numpy().astype(np.float32)  # the positions after BOS
    assert len(x) >= 400
    from safetensors.numpy import save_file
    save_file({hook: x}, str(tmp_path / "x.safetensors"))  # keyed by hook, so nsae pairs it with the SAE's layer
    out = run_nsae(f'acts = load acts "{tmp_path / "x.safetensors"}"\n'
                   f'g = load sae "{tmp_path / "trained"}"\n'
                   f'g\n'
                   f'eval g acts\n', tmp_path)
    layer = out[2]["value"]["layers"][0]
    assert (layer["hook"], layer["d_sae"], layer["alpha"], layer["sigma"], layer["mse"], out[2]["value"]["architecture"]) \
        == (hook, 128, 1e-4, 0.5, "mean", "nsae")
    (ours,) = eval_rows(out[3])
    _, theirs = saelens_metrics(tmp_path / "trained", x)
    assert_close(ours, theirs)
