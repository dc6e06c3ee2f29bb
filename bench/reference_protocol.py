"""What bench/torch_reference.py and bench/jax_reference.py share: the command line, the
timing protocol of bench/src/timing.rs (warm-up, calibrate the iterations per sample to last
at least --min-sample-s, then --reps samples; the median time per iteration) and the serving
loop through which vaekit-bench interleaves the sides (one workload name per stdin line, one
JSON line back)."""

import argparse
import json
import math
import os
import statistics
import sys
import time


def parse_args(doc, device_help):
    """The options every side takes (vaekit-bench passes the same ones to all)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-sample-s", type=float, default=0.3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--worker", action="store_true", help="accepted for symmetry; ignored")
    ap.add_argument(
        "--serve",
        action="store_true",
        help="read workload names from stdin, one per line, and answer each with its JSON line "
        "(how vaekit-bench interleaves the sides)",
    )
    ap.add_argument("--device", default="cpu", help=device_help)
    return ap.parse_args()


def measure(name, step, reps, warmup, min_sample_s):
    """The median milliseconds per call of `step` (which must wait for its result)."""
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    step()
    once = max(time.perf_counter() - t, 1e-9)
    iterations = max(1, math.ceil(min_sample_s / once))
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(iterations):
            step()
        samples.append((time.perf_counter() - t) * 1e3 / iterations)
    return {
        "name": name,
        "median_ms": statistics.median(samples),
        "samples_ms": samples,
        "iterations": iterations,
    }


def run(label, workloads, args, wrap, extra_warmup=0):
    """Measures the workloads asked for: with --serve each name read from stdin (after a
    ready line), else --only's or all; `wrap` makes a built step wait for its result;
    `extra_warmup` untimed calls more (JAX's compilation)."""
    if args.serve:
        print(json.dumps({"kind": "ready"}), flush=True)
        names = (line.strip() for line in sys.stdin)
    else:
        names = [n for n in args.only.split(",") if n] or list(workloads)
    for name in names:
        if not name:
            continue
        if name not in workloads:
            sys.exit(f"unknown workload {name!r}; workloads: {', '.join(workloads)}")
        print(f"{label}: {name}", file=sys.stderr)
        step = wrap(workloads[name]())
        m = measure(name, step, max(1, args.reps), args.warmup + extra_warmup, args.min_sample_s)
        print(json.dumps(m), flush=True)
