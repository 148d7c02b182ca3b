"""The readline REPL and `nsae run`, driven through a pty (pexpect) and subprocesses.

`scripts/test` sets NSAE_BIN to the built binary; without it the debug build in .build is used.
"""
import json
import os
import pathlib
import re
import subprocess
import time

import pexpect
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PROMPT = "nsae> "


def nsae_binary() -> str:
    path = os.environ.get("NSAE_BIN") or str(REPO / ".build" / "debug" / "nsae")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"nsae binary not found at {path}: build it, or set NSAE_BIN")
    return path


def start_repl(tmp_path, history="history"):
    env = dict(os.environ, NSAE_HISTORY=str(tmp_path / history), TERM="xterm", SWIFT_BACKTRACE="interactive=no")
    # codec_errors: the tty echoes ^C into the output the moment it is typed, possibly between the bytes of a
    # progress bar's multi-byte block character.
    child = pexpect.spawn(nsae_binary(), env=env, cwd=str(tmp_path), encoding="utf-8", codec_errors="replace",
                          timeout=30, dimensions=(40, 200))
    child.expect_exact(PROMPT)
    return child


def run(child, line, timeout=30):
    """Sends a line and returns what it printed before the next prompt."""
    child.sendline(line)
    child.expect_exact(PROMPT, timeout=timeout)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before).replace("\r", "")


def quit_repl(child):
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_values_and_errors_keep_the_session(tmp_path):
    child = start_repl(tmp_path)
    assert run(child, "x = 2k").strip() == "x = 2k", "a binding prints nothing"
    assert "2000" in run(child, "x")
    error = run(child, "trian x")
    assert "did you mean `train`?" in error
    assert "^" in error
    assert "2000" in run(child, "x"), "an error does not discard bound values"
    quit_repl(child)


def test_tab_completes_verbs_and_options(tmp_path):
    child = start_repl(tmp_path)
    child.send("tra\t")
    child.expect_exact("train")
    child.send("\x15")  # Ctrl-U: clear the line
    child.send("set se\t")
    child.expect_exact("seed=")
    child.send("3\r")
    child.expect_exact(PROMPT)
    assert "3" in run(child, "set").split("seed")[1]
    quit_repl(child)


def test_multiline_input_with_continuation(tmp_path):
    child = start_repl(tmp_path)
    child.sendline("y = \\")
    child.expect_exact("...> ")
    child.sendline("  1.5k")
    child.expect_exact(PROMPT)
    assert "1500" in run(child, "y")
    quit_repl(child)


def test_a_string_over_two_lines_completes_and_runs(tmp_path):
    child = start_repl(tmp_path)
    child.sendline('echo "abc')
    child.expect_exact("...> ")
    child.sendline('def"')
    child.expect_exact(PROMPT, timeout=10)
    assert "abc\r\ndef" in child.before, "the string keeps its newline and the statement runs"
    child.sendline("x = [1,")
    child.expect_exact("...> ")
    child.sendline(" 2]")
    child.expect_exact(PROMPT, timeout=10)
    assert "[1, 2]" in run(child, "x")
    quit_repl(child)


def test_history_persists_across_sessions(tmp_path):
    child = start_repl(tmp_path)
    run(child, 'echo "remember me"')
    quit_repl(child)
    assert 'echo "remember me"' in (tmp_path / "history").read_text()
    child = start_repl(tmp_path)
    child.send("\x1b[A")  # up arrow recalls the previous session's line
    child.expect_exact('echo "remember me"')
    child.send("\r")
    child.expect_exact("remember me")
    child.expect_exact(PROMPT)
    quit_repl(child)


def test_ctrl_c_at_the_prompt_clears_the_line(tmp_path):
    child = start_repl(tmp_path)
    child.send("garbage that is never run")
    child.sendintr()
    child.expect_exact(PROMPT)
    assert "5000" in run(child, "5k")
    quit_repl(child)


def test_ctrl_c_during_train_leaves_the_sae_usable(tmp_path):
    child = start_repl(tmp_path)
    run(child, f'toy = synth d=8 features=32 active=2 norms=[1,4] tokens=2k out="{tmp_path}/toy"')
    run(child, "s = sae relu toy expansion=2")
    child.sendline("train s toy steps=1000000 batch=64")
    time.sleep(2.0)
    child.sendintr()
    child.expect_exact("interrupted", timeout=30)
    child.expect_exact(PROMPT)
    listing = run(child, "vars")
    assert "trained 0 steps" not in listing.split("s     sae")[-1], listing
    evaluation = run(child, "eval s toy tokens=500", timeout=60)
    assert "explained_variance" in evaluation
    # Training again continues from where it stopped.
    log = run(child, "train s toy steps=2 batch=64 log_every=1", timeout=60)
    assert "step" in log and "interrupted" not in log
    quit_repl(child)


def write_script(tmp_path, text):
    path = tmp_path / "script.nsae"
    path.write_text(text)
    return path


def test_run_script_text_and_exit_status(tmp_path):
    script = write_script(tmp_path, 'echo "hi"\nx = 2k\nx\n')
    result = subprocess.run([nsae_binary(), "run", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n2000\n"


def test_run_script_stops_at_the_first_error_with_its_line(tmp_path):
    script = write_script(tmp_path, 'echo "one"\nbogus 1\necho "never"\n')
    result = subprocess.run([nsae_binary(), "run", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == "one\n"
    assert "line 2" in result.stderr and "bogus 1" in result.stderr and "^" in result.stderr


def test_run_parses_the_whole_script_before_running_any_of_it(tmp_path):
    script = write_script(tmp_path, 'echo "one"\nx = 1\ny = [1 2]\n')
    result = subprocess.run([nsae_binary(), "run", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == "", "a syntax error on line 3 runs nothing"
    assert "line 3" in result.stderr and "nothing ran" in result.stderr


def test_run_json_mode_prints_one_object_per_statement(tmp_path):
    script = write_script(tmp_path, 'echo "hi"\nx = 2k\n[1, "a"]\nnope\n')
    result = subprocess.run([nsae_binary(), "run", str(script), "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert objects[0] == {"line": 1, "type": "stream", "value": "hi"}
    assert objects[1] == {"line": 2, "name": "x", "type": "number", "value": 2000}
    assert objects[2] == {"line": 3, "name": None, "type": "list", "value": [1, "a"]}
    assert objects[3]["line"] == 4 and "unknown name `nope`" in objects[3]["error"]


def test_run_reads_stdin(tmp_path):
    result = subprocess.run([nsae_binary(), "run", "-", "--json"], input="1e-3\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"line": 1, "name": None, "type": "number", "value": 0.001}


def test_json_mode_keeps_progress_off_stdout(tmp_path):
    script = write_script(tmp_path, f'toy = synth d=4 features=8 active=1 norms=[1] tokens=20k out="{tmp_path}/t"\n')
    result = subprocess.run([nsae_binary(), "run", str(script), "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["type"] for o in objects] == ["store"]
    assert objects[0]["value"]["tokens"] == 20000
    assert "synth" in result.stderr, "progress goes to stderr"


def test_missing_script_is_a_clear_error(tmp_path):
    result = subprocess.run([nsae_binary(), "run", str(tmp_path / "missing.nsae")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "cannot read the script" in result.stderr
