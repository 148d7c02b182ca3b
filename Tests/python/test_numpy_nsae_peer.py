"""The NSAE's numpy step (Benchmarks/sae_numpy_nsae.py), the benchmarks' peer for nsae's NSAE step: its loss and
gradients against PyTorch autograd in float64 with the same noise (relative 1e-4, as the shared ReLU peer's check)."""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(ROOT, "Benchmarks", "sae_numpy_nsae.py")


def _require(*names):
    absent = [n for n in names if importlib.util.find_spec(n) is None]
    if absent:
        pytest.skip(f"the NSAE numpy peer's check needs {', '.join(absent)} (scripts/setup installs numpy and CPU torch)")


def test_numpy_nsae_step_matches_autograd():
    _require("numpy", "torch")
    run = subprocess.run([sys.executable, PEER, "--check"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [l for l in run.stdout.splitlines() if l.startswith("check: grad")]
    assert len(lines) == 4, run.stdout
    assert run.stdout.strip().endswith("check: OK"), run.stdout
