"""The Benchmarks executable's command line: every option it reads is listed in --help, and an option it does not
read, a bad value or an unknown benchmark is refused by name (exit 64) before anything runs. Before, `--help` and a
mistyped option such as `--cases=relu` were ignored and the whole suite ran."""
import os
import pathlib
import subprocess

import pytest

from conftest import nsae_binary

SUITES = ["matmul", "language", "sae", "sae-density", "sae-sweep", "harvest", "topk", "scan", "tokenizer", "gpt2"]


def benchmarks_binary() -> str:
    path = pathlib.Path(nsae_binary()).parent / "Benchmarks"
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"Benchmarks binary not found at {path}: `swift build --build-tests` builds it beside nsae")
    return str(path)


def run(*args):
    return subprocess.run([benchmarks_binary(), *args], capture_output=True, text=True, timeout=60)


def test_help_lists_every_benchmark_and_option():
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    for suite in SUITES:
        assert suite in proc.stdout, suite
    for option in ["--quick", "--json", "--case", "--path", "--dsae", "--l0", "--rounds", "--tokens"]:
        assert option in proc.stdout, option


@pytest.mark.parametrize("args, message", [
    (["sae-density", "--cases=relu"], "Unknown option '--cases'"),
    (["sae-density", "--rounds=0"], "--rounds=0: expected a whole number of rounds from 1 to 100"),
    (["sae-density", "--rounds=x"], "The value 'x' is invalid for '--rounds <rounds>'"),
    (["sae-density", "--dsae=6144,x"], "--dsae=6144,x: expected dictionary sizes from 1 to 1048576"),
    (["sae-density", "--dsae=0"], "--dsae=0: expected dictionary sizes"),
    (["sae-density", "--l0=0"], "--l0=0: expected whole percentages from 1 to 99"),
    (["sae-density", "--l0=15,x"], "--l0=15,x: expected whole percentages from 1 to 99"),
    (["sae-density", "--l0=15,"], "--l0=15,: expected whole percentages from 1 to 99"),
    (["sae-density", "--path=both"], "The value 'both' is invalid for '--path <path>'"),
    (["scan", "--tokens=0"], "--tokens=0: expected a positive number of tokens"),
    (["nope"], "unknown benchmark 'nope'; choose one of: matmul,"),
    (["sae", "extra"], "Unexpected argument 'extra'"),
])
def test_bad_input_is_refused_by_name_before_anything_runs(args, message):
    proc = run(*args)
    assert proc.returncode == 64, (proc.returncode, proc.stdout, proc.stderr)
    assert message in proc.stderr, proc.stderr
    assert proc.stdout == "", "nothing may run before the refusal: " + proc.stdout
