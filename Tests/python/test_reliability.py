"""Reliability through the real binary: kill -9 at seeded random moments of writes leaves the old data or the
complete new data, never a mix; long words tokenize as GPT-2's own encoder.py does; bad inputs exit with a
message and a status instead of a signal."""
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, nsae_binary

DATA = REPO.parent / "shared" / "data"


def run_script(tmp_path, text, *args, timeout=300):
    script = tmp_path / f"s{random.randrange(1 << 30)}.nsae"
    script.write_text(text)
    return subprocess.run([nsae_binary(), "run", str(script), "--json", *args],
                          capture_output=True, text=True, timeout=timeout)


def values(proc):
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def store_tokens(tmp_path, folder):
    """The token count of the store at `folder`, loaded by nsae (which checks every shard against its manifest)."""
    proc = run_script(tmp_path, f'a = load acts "{folder}"\n')
    assert proc.returncode == 0, proc.stderr
    return values(proc)[0]["value"]["tokens"]


def kill_trials(tmp_path, folder, first, replace, seed, trials=4):
    """Writes `first`; runs `replace` once to completion elsewhere to know the new store's size; then starts
    `replace` over `folder` and kills it with SIGKILL after a seeded random delay, `trials` times. After each kill
    the store at `folder` must load and hold the old or the complete new data."""
    proc = run_script(tmp_path, first)
    assert proc.returncode == 0, proc.stderr
    expected_old = store_tokens(tmp_path, folder)
    reference = tmp_path / "reference-run"
    proc = run_script(tmp_path, replace.replace(str(folder), str(reference)))
    assert proc.returncode == 0, proc.stderr
    expected_new = store_tokens(tmp_path, reference)
    assert expected_new != expected_old
    rng = random.Random(seed)
    seen = set()
    for trial in range(trials):
        script = tmp_path / f"replace{trial}.nsae"
        script.write_text(replace)
        child = subprocess.Popen([nsae_binary(), "run", str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 2.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        tokens = store_tokens(tmp_path, folder)
        assert tokens in (expected_old, expected_new), f"trial {trial}: the store holds {tokens} tokens, a mix"
        seen.add(tokens)
        names = sorted(os.listdir(folder))
        assert all(not n.startswith(".") for n in names), f"staging files inside the store: {names}"
    return seen


def test_kill_during_synth_over_a_store_leaves_old_or_new(tmp_path):
    folder = tmp_path / "toy"
    seen = kill_trials(tmp_path, folder,
                       f'a = synth d=64 features=256 active=4 norms=[1,4] tokens=3000 seed=1 out="{folder}"\n',
                       f'b = synth d=64 features=256 active=4 norms=[1,4] tokens=400000 seed=2 out="{folder}" overwrite=true\n',
                       seed=14)
    print("store states seen after kills:", sorted(seen))
    # A later write cleans the staging folders that killed runs left beside the store.
    proc = run_script(tmp_path, f'c = synth d=8 features=16 active=2 norms=[1] tokens=100 seed=3 out="{folder}" overwrite=true\n')
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(n for n in os.listdir(tmp_path) if not n.startswith(".toy.partial-"))
    assert store_tokens(tmp_path, folder) == 100


def test_kill_during_harvest_over_a_store_leaves_old_or_new(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"Paragraph {i} is about sparse autoencoders and the features they find." * 3 for i in range(400)))
    folder = tmp_path / "mlp"
    model = DATA / "gpt2-tiny"
    head = f'm = load gpt2 "{model}"\nc = load text "{corpus}"\n'
    kill_trials(tmp_path, folder,
                head + f'a = harvest m c hook=mlp_out tokens=640 context=32 out="{folder}"\n',
                head + f'b = harvest m c hook=mlp_out tokens=100000 context=32 batch=2 out="{folder}" overwrite=true\n',
                seed=15, trials=3)


def test_an_interrupted_store_is_refused_with_what_to_do(tmp_path):
    folder = tmp_path / "cut"
    script = tmp_path / "cut.nsae"
    script.write_text(f'a = synth d=512 features=1024 active=2 norms=[1] tokens=1000000 out="{folder}"\n')
    child = subprocess.Popen([nsae_binary(), "run", str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # The store is written in a hidden staging sibling; interrupt once its first shard is there.
    while not list(tmp_path.glob(".cut.partial-*/shard-00000.safetensors")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)   # Ctrl-C: the rows so far are kept, marked incomplete
    assert child.wait(timeout=60) == 130
    if not (folder / "manifest.json").exists():
        pytest.skip("the synth had not finished a shard before the interrupt; nothing to check")
    if json.loads((folder / "manifest.json").read_text())["complete"]:
        pytest.skip("the synth finished before the interrupt arrived; nothing to check")
    proc = run_script(tmp_path, f'a = load acts "{folder}"\n')
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "incomplete" in output and "incomplete=true" in output, output
    proc = run_script(tmp_path, f'a = load acts "{folder}" incomplete=true\na\n')
    assert proc.returncode == 0, proc.stderr
    assert "INCOMPLETE" in proc.stderr or values(proc)[0]["value"]["complete"] is False


def reference_tokenizer():
    sys.path.insert(0, str(REPO / "tools" / "builtin_model"))
    try:
        import regex  # noqa: F401  (the reference encoder's pre-tokenizer)
    except ImportError:
        pytest.skip("the reference GPT-2 encoder needs the `regex` package (pip install regex)")
    from train import GPT2Tokenizer
    tok = DATA / "gpt2-tokenizer"
    return GPT2Tokenizer(str(tok / "encoder.json"), str(tok / "vocab.bpe"))


def test_long_words_tokenize_as_gpt2s_encoder_does(tmp_path):
    reference = reference_tokenizer()
    rng = random.Random(7)
    words = ["a" * 2000, "ab" * 1000, "x" * 17, "".join(rng.choice("etaoinshrdlu") for _ in range(3000)),
             "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000)), "Supercalifragilistic" * 100,
             "1234567890" * 100]
    script = "m = load gpt2 \"" + str(DATA / "gpt2-tiny") + "\"\n" + "".join(f'tokenize m "{w}"\n' for w in words)
    started = time.monotonic()
    proc = run_script(tmp_path, script)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    tables = [v["value"] for v in values(proc)[1:]]
    assert len(tables) == len(words)
    for word, table in zip(words, tables):
        ids = [row[1] for row in table["rows"]]
        assert ids == reference.encode(word), f"word of {len(word)} characters: ids differ"
    print(f"{sum(map(len, words))} characters in long words tokenized by nsae in {elapsed:.2f} s (including start-up)")


def test_a_100k_character_word_does_not_stall(tmp_path):
    script = "m = load gpt2 \"" + str(DATA / "gpt2-tiny") + "\"\n" + 'tokenize m "' + "z" * 100_000 + '"\n'
    proc = run_script(tmp_path, script, timeout=60)   # quadratic BPE took minutes; now well under a second
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(values(proc)[1]["value"]["rows"]) > 1000


@pytest.mark.parametrize("text,fragments", [
    ("x = " + "[" * 100_000 + "1" + "]" * 100_000, ["nest more than 64"]),
    ("set threads=4\nm = load gpt2 \"" + str(DATA / "gpt2-tiny") + "\"\nrun m \"The cat sat on\"\nbad = [1, 2", ["expected"]),
    ("a = synth features=1e15 out=\"/tmp/never\"", ["memory"]),
    ("x = 0..1000000000000", ["too long"]),
], ids=["nesting", "threads-then-unclosed-list", "memory", "range"])
def test_bad_input_ends_with_a_message_not_a_signal(tmp_path, text, fragments):
    proc = run_script(tmp_path, text + "\n")
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    output = proc.stdout + proc.stderr   # --json puts the error object on stdout
    for f in fragments:
        assert f in output, output[-2000:]
