"""A sweep saved by nsae is a folder per grid value of SAELens folders: SAELens 6 loads each SAE of it with
`SAE.load_from_disk`, with the grid value as its coefficient and nsae's numbers (nsae's `eval` of that grid point's
group, over every row of the activations, against SAELens's encode and forward)."""
import json
import subprocess

import numpy as np

from conftest import nsae_binary
from saelens_helpers import require_saelens

sae_lens, torch = require_saelens()


def run_nsae(script, tmp_path):
    path = tmp_path / "script.nsae"
    path.write_text(script)
    proc = subprocess.run([nsae_binary(), "run", str(path), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_saved_sweep_loads_in_saelens_with_nsae_numbers(tmp_path):
    g = np.random.default_rng(0)
    x = (g.standard_normal((2000, 16)) * np.exp(g.standard_normal((2000, 1)) * 0.5) * 3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "sweep"
    statements = run_nsae(f'''acts = load acts "{tmp_path / 'x.npy'}"
s = sweep relu acts alpha=geom(1e-2, 1, 3) expansion=2
train s acts steps=40 batch=256
save s "{out}"
g = load sae "{out / 'relu-alpha-0.1'}"
eval g acts
''', tmp_path)
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["architecture"] == "relu" and manifest["grid_option"] == "alpha"
    assert manifest["values"] == [0.01, 0.1, 1]
    assert manifest["groups"] == ["relu-alpha-0.01", "relu-alpha-0.1", "relu-alpha-1"]
    layer_folders = sorted(p.name for p in (out / "relu-alpha-0.1").iterdir())
    assert len(layer_folders) == 1, layer_folders
    folder = out / "relu-alpha-0.1" / layer_folders[0]
    sae = sae_lens.SAE.load_from_disk(str(folder), dtype="float32")
    assert type(sae).__name__ == "StandardSAE"
    assert abs(json.loads((folder / "cfg.json").read_text())["l1_coefficient"] - 0.1) < 1e-7  # a Float32 α
    with torch.no_grad():
        codes = sae.encode(torch.from_numpy(x)).double().numpy()
        recon = sae(torch.from_numpy(x)).double().numpy()
    xd = x.astype(np.float64)
    err = ((recon - xd) ** 2).sum(axis=1)
    theirs = {"l0": (codes > 0).sum(axis=1).mean(), "mse": err.mean(),
              "explained_variance": 1 - err.sum() / ((xd - xd.mean(axis=0)) ** 2).sum()}
    value = statements[-1]["value"]
    ours = dict(zip(value["columns"], value["rows"][0]))
    for metric, expected in theirs.items():
        assert abs(ours[metric] - expected) <= 1e-5 * max(abs(expected), 1e-12), (metric, ours[metric], expected)
    # The grid points differ (the sweep trained three SAEs, not one three times).
    other = sae_lens.SAE.load_from_disk(str(out / "relu-alpha-1" / layer_folders[0]), dtype="float32")
    assert not torch.equal(other.W_enc, sae.W_enc)
