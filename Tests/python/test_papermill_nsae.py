"""papermill with `-p` on an nsae notebook: the `papermill` command finds python/nsae_saelens's translator for the
`nsae` language and injects nsae lines, which the kernel then runs."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

try:
    import papermill  # noqa: F401
    from nsae_saelens.papermill_translator import NSAETranslator
except Exception as error:
    pytest.skip(f"papermill or nsae_saelens cannot be imported ({type(error).__name__}: {error}); scripts/setup "
                "installs papermill and `pip install ./python`", allow_module_level=True)


def test_translator_writes_nsae_values():
    code = NSAETranslator.codify({"tokens": 100000, "lr": 1e-3, "model": 'my "gpt2"\\x', "layers": [0, 3],
                                  "quick": True})
    assert code == ('# Parameters\ntokens = 100000\nlr = 0.001\nmodel = "my \\"gpt2\\"\\\\x"\nlayers = [0, 3]\n'
                    'quick = true\n')
    for bad in (None, {"a": 1}, float("nan")):
        with pytest.raises(Exception, match="parameter 'p'"):
            NSAETranslator.codify({"p": bad})


def test_papermill_injects_parameters_into_quickstart(tmp_path, kernel_name):
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.out.ipynb", "work"))
    out = tmp_path / "out.ipynb"
    proc = subprocess.run([sys.executable, "-m", "papermill", str(tmp_path / "notebooks" / "quickstart.ipynb"), str(out),
                           "-k", kernel_name, "--cwd", str(tmp_path / "notebooks"),
                           "-p", "tokens", "3000", "-p", "steps", "7", "-p", "batch", "64", "-p", "model", "gpt2 \"tiny\""],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads(out.read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    (injected,) = [i for i, c in enumerate(nb["cells"]) if "injected-parameters" in c["metadata"].get("tags", [])]
    assert "parameters" in nb["cells"][injected - 1]["metadata"]["tags"]
    assert sources[injected] == '# Parameters\ntokens = 3000\nsteps = 7\nbatch = 64\nmodel = "gpt2 \\"tiny\\""\n'
    # The kernel ran with the injected values (the progress lines say 3000 tokens and 7 steps, not 50k and 400).
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    text = json.dumps([c["outputs"] for c in code])
    assert "3000/3000 tokens" in text and "50000" not in text
    assert "7/7 steps" in text and "400/400" not in text
