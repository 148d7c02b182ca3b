"""The built-in GPT-2: its training tool (tools/builtin_model/train.py) run end to end for a few steps, and the
second part of `nsae demo` on the shipped model at reduced size.

Both need Debian's python3.11-doc (the corpus); the tool also needs torch and regex. Where they are absent the tests
are skipped with the reason in the skip message, never passed silently. CI installs all of them (scripts/setup).
"""
import importlib.util
import json
import math
import os
import pathlib
import struct
import subprocess
import sys

import pytest

from conftest import nsae_binary, run_quick_demo, table
from demo_checks import check_part_two

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "builtin_model" / "train.py"
CORPUS = pathlib.Path("/usr/share/doc/python3.11/html/_sources")
BUILTIN = REPO / "models" / "builtin-gpt2"

needs_corpus = pytest.mark.skipif(not (CORPUS / "library").is_dir(),
                                  reason=f"the corpus {CORPUS} is not installed: apt-get install -y python3.11-doc")


def missing_modules(*names):
    return [n for n in names if importlib.util.find_spec(n) is None]


def load_tool():
    spec = importlib.util.spec_from_file_location("builtin_train", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_safetensors(path):
    import numpy as np
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F16", name
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + start:8 + n + end], dtype="<f2").astype("float32").reshape(info["shape"])
    return out


def run_script(lines, *extra):
    script = "\n".join(lines) + "\n"
    proc = subprocess.run([nsae_binary(), "run", "-", "--json", *extra], input=script, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


@needs_corpus
def test_training_tool_runs_end_to_end_and_nsae_reads_what_it_wrote(tmp_path):
    absent = missing_modules("torch", "regex", "numpy")
    if absent:
        pytest.skip(f"the training tool needs {', '.join(absent)} (pip install /opt/wheels/torch-*.whl regex numpy)")
    out = tmp_path / "model"
    proc = subprocess.run([sys.executable, str(TOOL), "--out", str(out), "--steps", "3", "--batch", "4"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt", "validation_slice.npy",
                 "training.json", "README.md"):
        assert (out / name).is_file(), name
    card = json.loads((out / "training.json").read_text())
    assert card["steps"] == 3 and card["tokens_seen"] == 3 * 4 * 128
    assert math.isfinite(card["validation_ce"]) and 9 < card["validation_ce"] < 11.5, "3 steps from random init"
    assert f"{card['validation_ce']:.4f}" in (out / "README.md").read_text()

    # An independent evaluation: the written float16 weights put back into the tool's torch model (undoing the
    # Hugging Face layout) give the same CE on a text as nsae's forward over the same folder.
    import torch
    tool = load_tool()
    cfg = json.loads((out / "config.json").read_text())
    model = tool.build_model(torch, {"vocab_size": cfg["vocab_size"], "n_positions": cfg["n_positions"],
                                     "n_embd": cfg["n_embd"], "n_layer": cfg["n_layer"], "n_head": cfg["n_head"]})
    weights = read_safetensors(out / "model.safetensors")
    with torch.no_grad():
        for name, tensor in tool.hf_state(model).items():
            source = torch.from_numpy(weights[name])
            # hf_state hands out transposed views for the Conv1D weights; copying into them writes the parameter.
            tensor.copy_(source)
    text = "The :mod:`os` module provides a portable way of using operating system dependent functionality."
    (result,) = [line for line in run_script([f'm = load gpt2 "{out}"', f'run m "{text}"']) if line["type"] == "run"]
    ids = torch.tensor([result["value"]["tokens"]])
    assert ids[0, 0].item() == 50256 and ids.shape[1] > 10
    with torch.no_grad():
        logits = model(ids)
        ce = float(torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]))
    assert abs(result["value"]["ce_loss"] - ce) < 1e-4 * ce, (result["value"]["ce_loss"], ce)


def test_training_tool_windows_equal_saelens_fixture():
    """The tool's windows are nsae's (design §5): SAELens's concat_and_batch_sequences output, committed as a fixture
    by tools/tlens/write_window_fixture.py, on documents that end at window boundaries."""
    fixture = json.loads((REPO / "Tests" / "ActivationsTests" / "Fixtures" / "saelens_windows.json").read_text())
    tool = load_tool()
    for case in fixture["cases"]:
        assert tool.windows(case["documents"], case["context"]) == case["windows"], case["name"]


def test_training_tool_without_corpus_names_the_package(tmp_path):
    absent = missing_modules("torch", "regex", "numpy")
    if absent:
        pytest.skip(f"the training tool needs {', '.join(absent)}")
    code = (f"import sys; sys.argv = ['train.py', '--out', {str(tmp_path)!r}, '--steps', '1'];"
            f"sys.path.insert(0, {str(TOOL.parent)!r}); import train; train.CORPUS_DIR = {str(tmp_path / 'none')!r};"
            "train.main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "apt-get install -y python3.11-doc" in proc.stderr


def test_training_tool_without_tokenizer_files_says_which(tmp_path):
    absent = missing_modules("torch", "regex", "numpy")
    if absent:
        pytest.skip(f"the training tool needs {', '.join(absent)}")
    proc = subprocess.run([sys.executable, str(TOOL), "--out", str(tmp_path / "m"), "--steps", "1", "--tokenizer",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "no GPT-2 tokenizer files" in proc.stderr and str(tmp_path) in proc.stderr


@needs_corpus
@pytest.mark.skipif(os.environ.get("CI") == "true" or bool(os.environ.get("NSAE_README_TEST")),
                    reason="the README's main command runs the full demo's part 2 in this run and applies the same checks "
                           "(test_readme_main_command_as_written); the quick debug-build run would repeat it")
def test_demo_part_two_on_the_builtin_model(tmp_path):
    out = tmp_path / "demo"
    results, _ = run_quick_demo(out, "gpt2")
    assert results["settings"]["synthetic"] is False, "--part gpt2 runs part 2 alone"
    check_part_two(results, out)


def test_demo_part_two_without_its_corpus_is_skipped_with_the_reason(tmp_path):
    missing = tmp_path / "no-docs"
    proc = subprocess.run([nsae_binary(), "demo", "--part", "gpt2", "--corpus", str(missing), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and f"{missing}/library" in proc.stderr and "--corpus" in proc.stderr
