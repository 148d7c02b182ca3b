"""The kernel in `jupyter console` (the real client, driven through a pty with pexpect).

jupyter console starts the kernel with its own terminal as the kernel's stderr, prints a display_data's text/plain
once and ignores update_display_data. So kernel log lines must stay off stderr at the default level, and a progress
bar's first display must not be a state that goes stale ("0% 1/400 steps" left on screen).
"""
import os
import re
import shutil

import pexpect
import pytest

from conftest import KERNEL_NAME

pytest.importorskip("jupyter_console", reason="jupyter_console is not installed (scripts/setup installs it)")

PROMPT = re.compile(r"In \[(\d+)\]: ")


def clean(text):
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def test_console_shows_no_kernel_log_and_no_stale_progress(tmp_path):
    jupyter = shutil.which("jupyter")
    assert jupyter, "jupyter is not on PATH"
    env = dict(os.environ)
    env.pop("NSAE_KERNEL_LOG", None)   # the default level, as a user's console runs it
    child = pexpect.spawn(jupyter, ["console", "--kernel", KERNEL_NAME, "--simple-prompt"], env=env,
                          cwd=str(tmp_path), encoding="utf-8", timeout=120, dimensions=(40, 200))
    seen = []

    def run(line):
        child.sendline(line)
        child.expect(PROMPT)
        seen.append(clean(child.before))
        return seen[-1]

    try:
        child.expect(PROMPT)
        seen.append(clean(child.before))
        synth = run(f'toy = synth d=8 features=16 active=2 norms=[1,2,3] tokens=50k seed=1 out="{tmp_path}/toy"')
        run("s = sae relu toy expansion=2 alpha=1e-3")
        train = run("train s toy steps=400 batch=256 log_every=200")
        child.sendeof()   # Ctrl-D, then yes: the console shuts the kernel down (its "shutting down" log is info)
        child.expect_exact("exit ([y]/n)?")
        child.sendline("y")
        child.expect(pexpect.EOF, timeout=60)
        seen.append(clean(child.before))
    finally:
        if child.isalive():
            child.terminate(force=True)
    everything = "".join(seen)
    assert "[nsae kernel" not in everything, f"kernel log lines reached the console:\n{everything}"
    assert "synth: started (50000 tokens)" in synth, synth
    assert "train: started (400 steps)" in train, train
    # No bar frozen part-way: a display the console printed once shows no percentage.
    assert not re.search(r"\[[#-]+\] \d+%", everything), f"a stale progress bar stayed on screen:\n{everything}"
    # The result follows: the training log's last rows.
    assert re.search(r"\n\s*400\s+2\s", train), train
