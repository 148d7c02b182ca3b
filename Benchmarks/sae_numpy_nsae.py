"""The NSAE's training step hand-written in numpy (fp32): the peer for nsae's NSAE step at the same shapes.

../shared/peers/sae_numpy.py is the ReLU SAE's step: its five matmuls are the NSAE's too, but it has none of the
NSAE's elementwise work, so `Benchmarks sae-density` also runs this peer (same style, same five matmuls, same Adam)
for the nsae rows:
  pre = (x - b_dec) @ W_enc + b_enc + sigma * eps,  eps ~ N(0, 1) drawn fresh every step (numpy's Generator)
  z = tanh(relu(pre));  x_hat = z @ W_dec + b_dec        (unconstrained decoder: no renormalisation)
  loss = mean_b ||x_hat - x||^2 + beta * mean_b sum_j z_j,   beta = alpha * mean_b ||x_b||^2 (the batch's)
  dL/dpre = (dL/dz + beta / B) * (1 - z^2) where z > 0, else 0
Adam(lr 1e-4, betas .9/.999, eps 1e-8). Elementwise numpy ops are single-threaded; the matmuls use OpenBLAS threads.

Usage: python3 sae_numpy_nsae.py [--threads 2] [--reps 5] [--dsae 6144,24576] [--batch 4096]
       python3 sae_numpy_nsae.py --check    (needs torch: loss and gradients against autograd, small shape)
Run through Benchmarks/peer_run.py by the benchmark, which imports ../shared/peers/benchutil for the timing.
"""
import argparse
import os
import platform
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--dsae", default="6144,24576")
ap.add_argument("--batch", type=int, default=4096)
ap.add_argument("--check", action="store_true")
args = ap.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peers")
sys.path.insert(0, PEERS)
import numpy as np  # noqa: E402

import benchutil  # noqa: E402

F = np.float32


class NumpyNSAE:
    def __init__(self, d_in, d_sae, batch, seed=0, alpha=1e-6, sigma=1.0, lr=1e-4):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((d_sae, d_in), dtype=F)
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        self.p = {"W_enc": np.ascontiguousarray(w.T), "b_enc": np.zeros(d_sae, F),
                  "W_dec": w.copy(), "b_dec": np.zeros(d_in, F)}
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.g = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.t, self.alpha, self.sigma, self.lr = 0, alpha, F(sigma), lr
        self.noise_rng = np.random.default_rng(seed + 1)
        self.xc = np.empty((batch, d_in), F)
        self.pre = np.empty((batch, d_sae), F)
        self.noise = np.empty((batch, d_sae), F)   # eps, then reused for the slope 1 - z^2
        self.xhat = np.empty((batch, d_in), F)
        self.tmp_p = np.empty((d_sae, d_in), F)

    def forward_backward(self, x, noise=None):
        p, g, B = self.p, self.g, x.shape[0]
        np.subtract(x, p["b_dec"], out=self.xc)
        np.matmul(self.xc, p["W_enc"], out=self.pre)
        self.pre += p["b_enc"]
        if noise is None:
            self.noise_rng.standard_normal(out=self.noise, dtype=F)
        else:
            self.noise[...] = noise
        self.noise *= self.sigma
        self.pre += self.noise
        z = np.maximum(self.pre, 0, out=self.pre)
        np.tanh(z, out=z)
        np.matmul(z, p["W_dec"], out=self.xhat)
        self.xhat += p["b_dec"]
        diff = np.subtract(self.xhat, x, out=self.xhat)
        beta = F(self.alpha * float(np.einsum("bi,bi->", x, x, dtype=np.float64)) / B)
        loss = float(np.vdot(diff, diff)) / B + float(beta) * float(z.sum(dtype=np.float64)) / B
        gx = diff
        gx *= F(2.0 / B)
        np.matmul(z.T, gx, out=g["W_dec"])
        gb_dec = gx.sum(axis=0)
        slope = np.multiply(z, z, out=self.noise)
        np.subtract(F(1), slope, out=slope)
        slope *= z > 0
        gz = np.matmul(gx, p["W_dec"].T, out=z)
        gz += beta / F(B)
        gz *= slope
        g["b_enc"][...] = gz.sum(axis=0)
        np.matmul(self.xc.T, gz, out=g["W_enc"])
        g["b_dec"][...] = gb_dec - g["b_enc"] @ p["W_enc"].T
        return loss

    def adam(self, b1=0.9, b2=0.999, eps=1e-8):
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for k, prm in self.p.items():
            g, m, v = self.g[k], self.m[k], self.v[k]
            m *= F(b1); m += F(1 - b1) * g
            v *= F(b2); g *= g; g *= F(1 - b2); v += g
            s = self.tmp_p.reshape(prm.shape) if prm.size == self.tmp_p.size else np.empty_like(prm)
            np.sqrt(v, out=s); s *= F(1 / np.sqrt(c2)); s += F(eps)
            np.divide(m, s, out=s); s *= F(self.lr / c1)
            prm -= s

    def step(self, x):
        loss = self.forward_backward(x)
        self.adam()
        return loss


def check():
    import torch
    B, d_in, d_sae = 64, 32, 96
    sae = NumpyNSAE(d_in, d_sae, B, seed=1, alpha=1e-2)
    rng = np.random.default_rng(2)
    for k in ("b_enc", "b_dec"):
        sae.p[k][...] = rng.standard_normal(sae.p[k].shape).astype(F) * 0.1
    x = rng.standard_normal((B, d_in)).astype(F)
    eps = rng.standard_normal((B, d_sae)).astype(F)
    tp = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in sae.p.items()}
    tx = torch.tensor(x.astype(np.float64))
    beta = 1e-2 * tx.pow(2).sum(-1).mean()
    z = torch.tanh(torch.relu((tx - tp["b_dec"]) @ tp["W_enc"] + tp["b_enc"] + torch.tensor(eps.astype(np.float64))))
    xh = z @ tp["W_dec"] + tp["b_dec"]
    loss = (xh - tx).pow(2).sum(-1).mean() + beta * z.sum(-1).mean()
    loss.backward()
    nl = sae.forward_backward(x, noise=eps)
    print(f"check: loss numpy {nl:.6f} torch {loss.item():.6f}")
    ok = abs(nl - loss.item()) < 1e-4 * abs(loss.item())
    for k in sae.p:
        err = np.abs(sae.g[k] - tp[k].grad.numpy()).max() / (np.abs(tp[k].grad.numpy()).max() + 1e-12)
        print(f"check: grad {k:6s} max rel err {err:.2e}")
        ok &= err < 1e-4
    print("check:", "OK" if ok else "MISMATCH")
    return ok


if args.check:
    sys.exit(0 if check() else 1)

print(f"# python {platform.python_version()} numpy {np.__version__} (NSAE step)")
D_IN, B = 768, args.batch
rng = np.random.default_rng(0)
x = rng.standard_normal((B, D_IN), dtype=F)
for d_sae in [int(s) for s in args.dsae.split(",")]:
    sae = NumpyNSAE(D_IN, d_sae, B)
    flops = 5 * 2 * B * D_IN * d_sae
    print(f"# d_sae={d_sae} batch={B} step matmul FLOPs={flops/1e9:.1f} G")
    benchutil.wait_idle(max_wait=120)
    r = benchutil.timeit(lambda: sae.step(x), n=args.reps, warmup=2, label=f"train step d_sae={d_sae}")
    print(f"{'train step':12s} d_sae={d_sae:5d} threads {args.threads}: {B/r['median']:8.0f} activations/s  "
          f"(~{flops/r['median']/1e9:.0f} GFLOP/s matmul-equiv)  {benchutil.fmt(r)}", flush=True)
    print(f"# final loss {sae.step(x):.3f}")
    del sae
