"""`save` of an SAE group killed with SIGKILL at random moments: the folder holds the old group or the new one,
never a mix (nsae writes the group into a temporary sibling and swaps it in with one rename)."""
import json
import pathlib
import random
import signal
import subprocess
import time

from conftest import nsae_binary


def group_state(folder: pathlib.Path):
    """The architecture and d_sae of every SAE folder in the group, with its weights file complete."""
    state = []
    for sub in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        cfg = json.loads((sub / "cfg.json").read_text())
        weights = (sub / "sae_weights.safetensors").read_bytes()
        header = int.from_bytes(weights[:8], "little")
        meta = json.loads(weights[8:8 + header])
        end = max(v["data_offsets"][1] for k, v in meta.items() if k != "__metadata__")
        assert len(weights) == 8 + header + end, f"{sub}: truncated weights"
        assert meta["W_enc"]["shape"] == [cfg["d_in"], cfg["d_sae"]]
        state.append((sub.name, cfg["architecture"], cfg["d_sae"]))
    return state


def test_killed_save_leaves_the_old_or_the_new_group(tmp_path):
    script = tmp_path / "save.nsae"
    out = tmp_path / "group"
    old = [(f"synthetic.layer{i}", "standard", 1024) for i in range(4)]
    new = [(f"synthetic.layer{i}", "topk", 2048) for i in range(4)]
    rng = random.Random(7)
    seen = set()
    for trial in range(24):
        script.write_text(
            f'toy = synth d=64 features=64 active=2 norms=[1,2,3,4] tokens=2k seed=1 out="{tmp_path / f"toy{trial}"}"\n'
            f'a = sae relu toy expansion=16\n'
            f'b = sae topk toy expansion=32 k=4\n'
            f'save a "{out}"\n'
            + "".join(f'save {"b" if i % 2 == 0 else "a"} "{out}"\n' for i in range(40)))
        proc = subprocess.Popen([nsae_binary(), "run", str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not out.exists() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = group_state(out)
        assert state in (old, new), f"trial {trial}: a mix of groups: {state}"
        seen.add(state == new)
        if len(seen) == 2 and trial >= 5:
            break
    assert len(seen) == 2, "the kills should land both before and after some swap"
