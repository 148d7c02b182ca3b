#!/usr/bin/env python3
"""Kernel benchmark: start-to-ready time and the round-trip of a trivial execute, measured with jupyter_client.

How to run (targets of ../shared/design/nsae.md §6: ready < 0.5 s, median round-trip < 5 ms):

    swift build -c release --product nsae
    python3 Benchmarks/kernel_bench.py --nsae "$(swift build -c release --show-bin-path)/nsae" [--quick] [--json]

It installs a kernelspec for that binary into a temporary JUPYTER_PATH, then
  - "start to ready": `start_new_kernel` (launch + kernel_info reply with its iopub status), median of 5 starts;
  - "execute round-trip": from sending `execute_request` for `1` until its reply and its idle status have both
    arrived, median (and p90) over 1000 requests after 50 warm-up requests.
Prints a human table, or with --json one JSON object per case (the Benchmarks harness format).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from jupyter_client.manager import start_new_kernel

KERNEL = "nsae-bench"


def install(nsae):
    root = tempfile.mkdtemp(prefix="nsae-bench-")
    subprocess.run([nsae, "install-kernel", "--prefix", root, "--name", KERNEL], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = os.path.join(root, "share", "jupyter")
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(root, "runtime")
    os.environ.setdefault("NSAE_KERNEL_LOG", "warning")


def start_to_ready(starts):
    times = []
    for _ in range(starts):
        began = time.perf_counter()
        km, kc = start_new_kernel(kernel_name=KERNEL, startup_timeout=60)
        times.append(time.perf_counter() - began)
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    return times


def execute_round_trips(kc, count, warmup=50):
    times = []
    for i in range(warmup + count):
        began = time.perf_counter()
        msg_id = kc.execute("1", store_history=False)
        replied = idle = False
        while not replied:
            replied = kc.get_shell_msg(timeout=10)["parent_header"].get("msg_id") == msg_id
        while not idle:
            msg = kc.get_iopub_msg(timeout=10)
            idle = (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle")
        if i >= warmup:
            times.append(time.perf_counter() - began)
    return times


def emit(args, case, metric, value, **extra):
    if args.json:
        print(json.dumps({"bench": "kernel", "case": case, "metric": metric, "value": round(value, 3), **extra}))
    else:
        details = "  ".join(f"{k}={v}" for k, v in extra.items())
        print(f"kernel  {case:<28} {value:10.3f} {metric}  {details}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsae", default=os.environ.get("NSAE_BIN", ".build/release/nsae"))
    parser.add_argument("--quick", action="store_true", help="2 starts and 200 round-trips")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not os.access(args.nsae, os.X_OK):
        sys.exit(f"no nsae binary at {args.nsae}: build it (swift build -c release --product nsae) or pass --nsae")
    install(os.path.abspath(args.nsae))

    starts = start_to_ready(2 if args.quick else 5)
    emit(args, "start to ready", "ms", statistics.median(starts) * 1000,
         min_ms=round(min(starts) * 1000, 1), starts=len(starts), target_ms=500)

    km, kc = start_new_kernel(kernel_name=KERNEL, startup_timeout=60)
    try:
        trips = sorted(execute_round_trips(kc, 200 if args.quick else 1000))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    emit(args, "execute round-trip (median)", "ms", statistics.median(trips) * 1000,
         p90_ms=round(trips[int(0.9 * len(trips))] * 1000, 3), requests=len(trips), target_ms=5)


if __name__ == "__main__":
    main()
