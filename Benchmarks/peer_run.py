"""Runs a dense SAE-step peer of ../shared/peers (sae_numpy.py, sae_torch.py), or this folder's NSAE step in numpy
(sae_numpy_nsae.py), for the Swift benchmarks.

The peers' timing helper (benchutil.timeit) keeps only runs during which other processes used < 5% of a core and
waits up to 2 minutes for an idle machine before each case. On this shared machine (4-5 sessions building) that
often leaves no clean run within its 150 s budget, and the peer then prints "nan activations/s" (the parse failure
the benchmarks used to report). The benchmarks compare ratios measured in the same sitting, under the same load,
so here every run counts, the idle wait is skipped, and only the "train step" case is timed (the peer's other
cases, forward alone and forward+backward, are not compared). Each "train step" line is printed as the peer
prints it, followed by `# peer_run: foreign_cpu=F` (mean CPU share of one core taken by other processes).

Usage: python3 peer_run.py PEER_SCRIPT [peer args...]
"""
import os
import runpy
import sys

script = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.dirname(script))
# The peers' timing helper, also for this folder's own peer (sae_numpy_nsae.py).
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peers"))
import benchutil  # noqa: E402

_timeit = benchutil.timeit
foreign_shares = []


def timeit(fn, n=5, warmup=1, budget_s=150.0, label="", foreign_max=0.05, log=sys.stderr):
    if not label.startswith("train step"):
        nan = float("nan")
        return {"median": nan, "min": nan, "max": nan, "n": 0, "times": [], "dropped": 0}
    b0, o0 = benchutil._all_busy_s(), benchutil._own_cpu_s()
    import time
    t0 = time.perf_counter()
    r = _timeit(fn, n=n, warmup=warmup, budget_s=budget_s, label=label, foreign_max=float("inf"), log=log)
    wall = time.perf_counter() - t0
    foreign_shares.append(max(0.0, (benchutil._all_busy_s() - b0) - (benchutil._own_cpu_s() - o0)) / max(wall, 1e-9))
    return r


benchutil.timeit = timeit
benchutil.wait_idle = lambda *a, **k: (0.0, 0.0)
sys.argv = [script] + sys.argv[2:]
runpy.run_path(script, run_name="__main__")
if foreign_shares:
    print(f"# peer_run: foreign_cpu={sum(foreign_shares) / len(foreign_shares):.2f}", flush=True)
