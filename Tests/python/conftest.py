"""Shared set-up for the kernel tests: a kernelspec for the built `nsae` binary in a temporary JUPYTER_PATH.

`scripts/test` sets NSAE_BIN to the built binary; without it the debug build in .build is used.
"""
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
KERNEL_NAME = "nsae-test"
_spec_root = None


def nsae_binary() -> str:
    path = os.environ.get("NSAE_BIN") or str(REPO / ".build" / "debug" / "nsae")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"nsae binary not found at {path}: build it, or set NSAE_BIN")
    return path


def run_quick_demo(out, part, *extra, timeout=900):
    """Runs `nsae demo --quick --part PART --out OUT [EXTRA…]`, asserts it succeeded, and returns (results.json,
    the process)."""
    import json
    proc = subprocess.run([nsae_binary(), "demo", "--quick", "--part", part, "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((pathlib.Path(out) / "results.json").read_text()), proc


def table(statement):
    """A table statement of results.json as a list of row dicts."""
    value = statement["value"]
    assert set(value) >= {"columns", "rows"}, statement
    return [dict(zip(value["columns"], row)) for row in value["rows"]]


def pytest_configure(config):
    """Installs the kernelspec before any test module (jupyter_kernel_test's setUpClass) looks for it."""
    global _spec_root
    _spec_root = tempfile.mkdtemp(prefix="nsae-jupyter-")
    subprocess.run([nsae_binary(), "install-kernel", "--prefix", _spec_root, "--name", KERNEL_NAME],
                   check=True, capture_output=True, text=True)
    data_dir = os.path.join(_spec_root, "share", "jupyter")
    os.environ["JUPYTER_PATH"] = data_dir + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    # Keep test kernels' logs quiet unless asked for, and their connection files out of the user's runtime dir.
    os.environ.setdefault("NSAE_KERNEL_LOG", "warning")
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(_spec_root, "runtime")


def pytest_unconfigure(config):
    if _spec_root:
        shutil.rmtree(_spec_root, ignore_errors=True)


@pytest.fixture(scope="session")
def kernel_name() -> str:
    return KERNEL_NAME


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """../shared/data beside the repository (CI lays shared/ next to the clone)."""
    return REPO.parent / "shared" / "data"
