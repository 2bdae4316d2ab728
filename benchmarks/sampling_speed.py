"""Samples per second of ``ConditionalINN.sample``: batched decoding (the default)
against one sample per pass (``bit_stable=True``), for N = 1, 8, 32.

The shipped colorization model on a 64x64 L input and the shipped 4x super-resolution
model on a 16x16 LR input (64x64 output). Each backend runs in its own process
(``KERAS_BACKEND``); within it, every (N, mode) is compiled once before timing and the
two modes alternate call by call (which one goes first swaps every round), so that a
busy moment of a shared machine falls on both: the ratio is taken per round (paired)
and its median reported beside the median rates.

    python -m benchmarks.sampling_speed --rounds 5 --out runs/sampling_speed
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = {"colorization": (64, 64, 1), "superres": (16, 16, 3)}
NS = (1, 8, 32)


def child(app, rounds, seed=0):
    """Time one backend (this process's); one JSON line per (app, N)."""
    import keras
    import numpy as np

    from cinn.apps.common.pretrained import load_model

    model = load_model(app)
    h, w, ch = SIZES[app]
    c = np.random.default_rng(seed).uniform(-0.5, 0.5, (1, h, w, ch)).astype("float32")
    if app == "colorization":
        c = c * 2.0  # L / 50 - 1 in [-1, 1]

    def once(n, bit_stable):
        t0 = time.perf_counter()
        np.asarray(keras.ops.convert_to_numpy(
            model.sample(c, n=n, seed=seed, bit_stable=bit_stable)))
        return time.perf_counter() - t0

    for n in NS:  # compile every shape first
        for stable in (True, False):
            once(n, stable)
    same = {n: bool(np.array_equal(
        keras.ops.convert_to_numpy(model.sample(c, n=n, seed=seed, bit_stable=True)),
        keras.ops.convert_to_numpy(model.sample(c, n=n, seed=seed)))) for n in NS}
    rows = []
    for n in NS:
        t = {True: [], False: []}
        for r in range(rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            for stable in order:
                t[stable].append(once(n, stable))
        ratios = [a / b for a, b in zip(t[True], t[False])]
        rows.append({"app": app, "backend": keras.backend.backend(), "n": n,
                     "input": f"{h}x{w}x{ch}", "rounds": rounds,
                     "one_by_one_per_s": n / statistics.median(t[True]),
                     "batched_per_s": n / statistics.median(t[False]),
                     "speedup_median": statistics.median(ratios),
                     "speedup_min": min(ratios), "speedup_max": max(ratios),
                     "bit_identical": same[n]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def table(rows):
    lines = ["| app (input) | backend | N | one per pass (bit_stable=True) | batched (default) "
             "| speedup, paired median [min-max] | same bits |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['app']} ({r['input']}) | {r['backend']} | {r['n']} | "
                     f"{r['one_by_one_per_s']:.1f}/s | {r['batched_per_s']:.1f}/s | "
                     f"{r['speedup_median']:.2f}x [{r['speedup_min']:.2f}-"
                     f"{r['speedup_max']:.2f}] | {'yes' if r['bit_identical'] else 'no'} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--apps", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    p.add_argument("--out", default="runs/sampling_speed")
    p.add_argument("--child", nargs=2, metavar=("APP", "ROUNDS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M")
    rows = []
    for backend in args.backends:
        for app in args.apps:
            env = {**os.environ, "KERAS_BACKEND": backend}
            proc = subprocess.run([sys.executable, "-m", "benchmarks.sampling_speed",
                                   "--child", app, str(args.rounds)], env=env,
                                  capture_output=True, text=True)
            got = [json.loads(line) for line in proc.stdout.splitlines()
                   if line.startswith("{")]
            if proc.returncode or not got:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            rows += got
            for r in got:
                print(json.dumps(r), flush=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"Measured {started} on {cpu_name()} "
            f"({os.cpu_count()} cores), `python -m benchmarks.sampling_speed "
            f"--rounds {args.rounds}`; load average at the end {load:.2f}.\n\n{table(rows)}\n")
    (out / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
