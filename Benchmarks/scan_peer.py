"""numpy peer of `Benchmarks scan`: the evaluation and top-k scans over an activation store, written the way a numpy
user would (fp32, chunked, OpenBLAS GEMMs, vectorised elementwise work).

It reads the store the benchmark wrote (manifest.json + safetensors shards, one hook), builds a ReLU SAE d_in → d_sae
with unit-norm random encoder rows (W_dec = W_enc rows, b_dec = 0) and b_enc = --bias, so the codes have the same
density as the Swift case's (x ~ N(0, I): pre ~ N(0, 1)), and times, over the whole store:
  eval     chunked pre = x @ W_enc.T + b_enc, c = relu(pre), x̂ = c @ W_dec + b_dec; Σ‖x − x̂‖², Σx, Σ‖x‖², Σ‖x̂‖/‖x‖,
           Σ‖x‖, L0, L1, fires per feature → MSE, explained variance, L0, dead fraction.
  top1     one feature: chunked x @ W_enc[f] + b_enc[f] (the one column a numpy user computes), relu, running top k
           via np.argpartition, active count, sum, 40-bin log10 histogram.
  topall   every feature: chunked codes as eval, per feature the running top k (np.argpartition along the token axis
           of the feature-major [d_sae, k + chunk]), active counts, sums, histograms (one np.bincount over feature·40 + bin).
Each case runs --reps times (the store read included, as the Swift scans read it); one line per case:
  scan-peer CASE tokens=N seconds=S tokens_per_s=R l0=L foreign_cpu=F
(foreign_cpu: mean share of one core other processes used while it ran, from ../shared/peers/benchutil.py as
Benchmarks/peer_run.py reports it.)

Usage: python3 scan_peer.py --store DIR --dsae M --bias B [--cases eval,top1,topall] [--reps 2] [--threads 2]
"""
import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--store", required=True)
ap.add_argument("--dsae", type=int, required=True)
ap.add_argument("--bias", type=float, required=True)
ap.add_argument("--cases", default="eval,top1,topall")
ap.add_argument("--reps", type=int, default=2)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--chunk", type=int, default=4096)
ap.add_argument("--k", type=int, default=20)
ap.add_argument("--feature", type=int, default=0)
args = ap.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/peers"))
try:
    import benchutil  # noqa: E402
except ImportError:
    benchutil = None

F = np.float32
BINS = 40

with open(os.path.join(args.store, "manifest.json")) as f:
    manifest = json.load(f)
hook = manifest["hooks"][0]["name"]
shards = [os.path.join(args.store, s["file"] if "file" in s else s["name"]) for s in manifest["shards"]]


def chunks():
    """The store's rows in chunks of --chunk (shards read one at a time, as a numpy user would)."""
    carry = None
    for path in shards:
        x = load_file(path)[hook].astype(F, copy=False)
        if carry is not None:
            x = np.concatenate([carry, x])
        n = x.shape[0] // args.chunk * args.chunk
        for s in range(0, n, args.chunk):
            yield x[s:s + args.chunk]
        carry = x[n:] if n < x.shape[0] else None
    if carry is not None and carry.shape[0] > 0:
        yield carry


d_in = manifest["hooks"][0]["d"]
rng = np.random.default_rng(0)
W = rng.standard_normal((args.dsae, d_in), dtype=F)
W /= np.linalg.norm(W, axis=1, keepdims=True)
W_enc_rows = np.ascontiguousarray(W)       # [m, d]
W_dec = W                                  # [m, d]
b_enc = np.full(args.dsae, args.bias, F)
b_dec = np.zeros(d_in, F)


def hist_bins(v):
    return np.clip(np.floor((np.log10(v.astype(np.float64)) + 4) * 5), 0, BINS - 1).astype(np.int64)


def run_eval():
    m = args.dsae
    sq_err = sum_sq = ratio = norms = l0 = l1 = 0.0
    sum_x = np.zeros(d_in, np.float64)
    fires = np.zeros(m, np.int64)
    tokens = 0
    for x in chunks():
        c = x @ W_enc_rows.T
        c += b_enc
        np.maximum(c, 0, out=c)
        xh = c @ W_dec
        xh += b_dec
        e = xh - x
        sq_err += float(np.einsum("ij,ij->", e, e, dtype=np.float64))
        nx = np.einsum("ij,ij->i", x, x, dtype=np.float64)
        nr = np.einsum("ij,ij->i", xh, xh, dtype=np.float64)
        sum_sq += float(nx.sum())
        norms += float(np.sqrt(nx).sum())
        ok = nx > 0
        ratio += float(np.sqrt(nr[ok] / nx[ok]).sum())
        sum_x += x.sum(0, dtype=np.float64)
        active = c > 0
        fires += active.sum(0)
        l0 += float(active.sum())
        l1 += float(c.sum(dtype=np.float64))
        tokens += x.shape[0]
    centred = sum_sq - float((sum_x * sum_x).sum()) / tokens
    return tokens, {"mse": sq_err / tokens, "ev": 1 - sq_err / centred, "l0": l0 / tokens,
                    "dead": float((fires == 0).mean())}


class TopK:
    """Running top k per column of [rows, cols] chunks (largest values, their token indices), kept feature-major
    ([cols, k]) so each feature's argpartition reads contiguous memory."""

    def __init__(self, k, cols):
        self.k = k
        self.val = np.full((cols, 0), -np.inf, F)
        self.tok = np.zeros((cols, 0), np.int64)

    def add(self, c, first):
        rows = c.shape[0]
        val = np.concatenate([self.val, c.T], axis=1)
        tok = np.concatenate([self.tok, np.broadcast_to(np.arange(first, first + rows)[None, :], (c.shape[1], rows))], axis=1)
        if val.shape[1] > self.k:
            idx = np.argpartition(val, val.shape[1] - self.k, axis=1)[:, -self.k:]
            val = np.take_along_axis(val, idx, 1)
            tok = np.take_along_axis(tok, idx, 1)
        self.val, self.tok = val, tok


def summarize(c, state, first):
    active = c > 0
    state["count"] += active.sum(0)
    state["sum"] += c.sum(0, dtype=np.float64)
    rows, cols = np.nonzero(active)
    state["hist"] += np.bincount(cols * BINS + hist_bins(c[rows, cols]), minlength=c.shape[1] * BINS)
    state["top"].add(c, first)


def new_state(cols):
    return {"count": np.zeros(cols, np.int64), "sum": np.zeros(cols, np.float64),
            "hist": np.zeros(cols * BINS, np.int64), "top": TopK(args.k, cols)}


def run_top1():
    f = args.feature
    w = W_enc_rows[f]
    state, tokens = new_state(1), 0
    for x in chunks():
        c = (x @ w + b_enc[f])[:, None]
        np.maximum(c, 0, out=c)
        summarize(c, state, tokens)
        tokens += x.shape[0]
    return tokens, {"l0": float(state["count"][0]) / tokens * args.dsae}


def run_topall():
    state, tokens = new_state(args.dsae), 0
    for x in chunks():
        c = x @ W_enc_rows.T
        c += b_enc
        np.maximum(c, 0, out=c)
        summarize(c, state, tokens)
        tokens += x.shape[0]
    return tokens, {"l0": float(state["count"].sum()) / tokens}


cases = {"eval": run_eval, "top1": run_top1, "topall": run_topall}
for name in args.cases.split(","):
    fn = cases[name]
    for rep in range(args.reps):
        b0 = benchutil._all_busy_s() if benchutil else 0.0
        o0 = benchutil._own_cpu_s() if benchutil else 0.0
        t0 = time.perf_counter()
        tokens, info = fn()
        dt = time.perf_counter() - t0
        foreign = (max(0.0, (benchutil._all_busy_s() - b0) - (benchutil._own_cpu_s() - o0)) / dt) if benchutil else float("nan")
        extras = " ".join(f"{k}={v:.6g}" for k, v in info.items())
        print(f"scan-peer {name} rep={rep} tokens={tokens} seconds={dt:.4f} tokens_per_s={tokens / dt:.1f} "
              f"{extras} foreign_cpu={foreign:.2f}", flush=True)
