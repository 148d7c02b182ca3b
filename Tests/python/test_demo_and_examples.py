"""The built-in default (`nsae demo`), the example scripts, and the README's main command, run as a user would.

The demo runs at its reduced size (`--quick`); its results.json is checked for the presence and sanity of every
number. The README's main command is run exactly as written (it builds a release binary and runs the full demo).
"""
import json
import math
import os
import pathlib
import re
import subprocess

import pytest

from conftest import nsae_binary, run_quick_demo, table
from demo_checks import check_part_two

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def numbers(node):
    """Every number in a JSON tree (JSON has no NaN: nsae writes non-finite numbers as null)."""
    if isinstance(node, bool) or node is None:
        return
    if isinstance(node, (int, float)):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from numbers(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from numbers(item)


def check_demo_results(results):
    statements = results["statements"]
    by_code = {s["code"]: s for s in statements}
    for n in numbers(results):
        assert math.isfinite(n)

    stats = table(by_code["stats acts"])
    means = [row["mean"] for row in stats]
    assert len(means) == 4 and means == sorted(means)
    assert means[-1] / means[0] > 40, "input norms span about two orders of magnitude"

    compare = table(by_code["cmp"])
    assert {row["sae"] for row in compare} == {"base", "norm"} and len(compare) == 8
    for row in compare:
        for key in ("l0", "l1", "mse", "explained_variance", "suppression", "dead_fraction", "alive"):
            assert row[key] is not None, (key, row)
        assert 0 <= row["l0"] <= 512 and row["l1"] >= 0 and row["mse"] >= 0
        assert row["explained_variance"] <= 1 and row["suppression"] >= 0
        assert 0 <= row["dead_fraction"] <= 1 and 0 <= row["alive"] <= 512
        assert row["architecture"] == ("relu" if row["sae"] == "base" else "nsae")

    for code in ("recovery base acts", "recovery norm acts"):
        rows = table(by_code[code])
        assert len(rows) == 4 and all(0 <= r["mmcs"] <= 1 for r in rows)

    for code in ("fit base acts", "fit norm acts"):
        (row,) = table(by_code[code])
        assert -1 <= row["r"] <= 1 and 0 <= row["p"] <= 1 and row["layers"] == 4
        assert by_code[code]["displays"], "the fit shows its scatter figure"

    pairs = results["settings"]["pairs"]
    for code in ("norms base", "norms norm", f"cosine base pairs={pairs}", f"cosine norm pairs={pairs}"):
        assert by_code[code]["displays"], f"{code} shows its figure"
        assert len(table(by_code[code])) >= 4
    # The relu decoder rows are unit-norm by construction; every quantile says so.
    for row in table(by_code["norms base"]):
        for key, value in row.items():
            if key != "layer":
                assert abs(value - 1) < 1e-3, (key, row)
    for row in table(by_code[f"cosine norm pairs={pairs}"]):
        assert -1 <= row["mean"] <= 1 and 0 <= row["fraction_above_0.9"] <= 1


def test_demo_quick_writes_report_and_sane_numbers(tmp_path):
    out = tmp_path / "demo"
    # --part all with a corpus that is not there: part 1 runs, part 2 is skipped with the reason, and it succeeds.
    missing = tmp_path / "no-docs"
    results, proc = run_quick_demo(out, "all", "--corpus", str(missing))
    assert results["settings"]["quick"] is True
    assert results["settings"]["gpt2"] is False and f"{missing}/library" in results["settings"]["gpt2_skipped"]
    assert "part 2 (built-in GPT-2) skipped" in proc.stderr and "--corpus" in proc.stderr
    check_demo_results(results)
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 6 and "<table" in html and "<script" not in html
    assert (out / "nsae").is_dir() and (out / "relu").is_dir()
    assert "explained_variance" in proc.stdout, "the demo prints its tables"
    first_screen = proc.stdout.split("\n\n\n")[0]
    assert first_screen.startswith("nsae demo: a standard ReLU SAE against a Normalized SAE"), first_screen
    assert "part 1" in first_screen and "part 2" not in first_screen, "it says what it will do (part 2 is skipped)"
    assert "--quick" in first_screen and "report.html" in first_screen


def test_synthetic_example_is_the_demo_script():
    proc = subprocess.run([nsae_binary(), "demo", "--part", "synthetic", "--print-script", "--out", "nsae-demo"],
                          capture_output=True, text=True, check=True)
    assert (REPO / "examples" / "synthetic.nsae").read_text() == proc.stdout


def test_builtin_gpt2_example_is_the_demo_script():
    proc = subprocess.run([nsae_binary(), "demo", "--part", "gpt2", "--print-script", "--out", "nsae-demo",
                           "--corpus", "/usr/share/doc/python3.11/html/_sources"], capture_output=True, text=True,
                          check=True)
    assert (REPO / "examples" / "builtin-gpt2.nsae").read_text() == proc.stdout
    both = subprocess.run([nsae_binary(), "demo", "--print-script", "--out", "nsae-demo"], capture_output=True,
                          text=True, check=True).stdout
    assert both == (REPO / "examples" / "synthetic.nsae").read_text() + "\n" + proc.stdout


def test_gpt2_example_runs_on_the_tiny_model(tmp_path):
    args = [nsae_binary(), "run", str(REPO / "examples" / "gpt2.nsae"), "--json",
            "--define", f"model={SHARED / 'gpt2-tiny'}", "--define", f"corpus={REPO / 'notebooks' / 'data' / 'corpus.txt'}",
            "--define", "tokens=4000", "--define", "steps=30", "--define", f"out={tmp_path / 'acts'}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all("error" not in line for line in lines)
    splices = [line for line in lines if line.get("type") == "table" and "ce_clean" in line["value"]["columns"]]
    assert len(splices) == 2
    for s in splices:
        rows = table(s)
        assert len(rows) == 2, "one row per layer of the tiny model"
        for row in rows:
            assert row["ce_zero"] >= 0 and row["ce_clean"] > 0 and math.isfinite(row["score"])


def test_define_rejects_malformed_bindings(tmp_path):
    script = tmp_path / "s.nsae"
    script.write_text("echo x\n")
    proc = subprocess.run([nsae_binary(), "run", str(script), "--define", "1x=3"], capture_output=True, text=True)
    assert proc.returncode != 0 and "not a valid name" in proc.stderr
    proc = subprocess.run([nsae_binary(), "run", str(script), "--define", "novalue"], capture_output=True, text=True)
    assert proc.returncode != 0 and "NAME=VALUE" in proc.stderr


def readme_command(heading):
    text = (REPO / "README.md").read_text()
    match = re.search(re.escape(heading) + r"\s*\n\s*\n    (.+)\n", text)
    assert match, f"README has no command under '{heading}'"
    return match.group(1).strip()


@pytest.mark.skipif(os.environ.get("CI") != "true" and not os.environ.get("NSAE_README_TEST"),
                    reason="runs the README's main command (a release build and the full demo): CI only, or set NSAE_README_TEST=1")
def test_readme_main_command_as_written():
    command = readme_command("Run the built-in default:")
    proc = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((REPO / "nsae-demo" / "results.json").read_text())
    check_demo_results(results)
    if pathlib.Path("/usr/share/doc/python3.11/html/_sources/library").is_dir():
        assert results["settings"]["gpt2"] is True, "part 2 runs where its corpus is installed"
        check_part_two(results, REPO / "nsae-demo")


def test_readme_test_command_is_what_ci_runs():
    command = readme_command("Run the tests:")
    ci = (REPO / ".ci" / "run").read_text()
    assert command == "bash scripts/setup && bash scripts/test"
    assert "bash scripts/setup" in ci and "bash scripts/test" in ci
