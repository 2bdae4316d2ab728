"""Peak training memory and step time against depth: standard vs inverse backprop.

    KERAS_BACKEND=jax python -m benchmarks.memory_depth --depths 4 8 16 32 64 \
        --patches 32 64 --batch 8 --timing-patches 64 --out benchmarks/results
    KERAS_BACKEND=jax python -m benchmarks.memory_depth --srflow      # configs/superres_srflow.yaml
    KERAS_BACKEND=jax python -m benchmarks.memory_depth --reconstruction

Not a test: every run is a child process (on JAX's default device: with a GPU, the
children also report its memory, ``gpu_*_mb``: the peak of device memory in use
minus what was in use before the steps). The model is the
colorization app's flow (3 Haar levels of ActNorm + 1x1 conv + affine coupling
steps, subnets ``--hidden`` wide, its conditioning network) with ``--depths``
steps per level, trained on random ``patch`` x ``patch`` crops by Adam.

Memory, one child per (patch, depth, mode): the training step is compiled (or
traced) ahead of time; then the kernel's peak-RSS mark (``VmHWM``) is reset and
``--steps`` steps run. ``activations_mb`` is that peak minus the RSS before the
steps: what training needs beyond the framework, the weights and the optimizer
state (XLA keeps its temporaries between steps, so the first execution has to be
inside the measurement; the child runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so
that freed buffers leave the RSS). On JAX also ``xla_temp_mb``, XLA's planned
temporary memory of the compiled step. ``peak_rss_mb``: the lifetime peak of
the process (framework, compilation and all).

Step time, one child per (patch, depth) with ``--timing-steps``: both modes in one
process, their steps alternating, so that the load of a shared machine falls on
both alike; the medians and their ratio. These children run with the C library's
default allocator (the memory children's ``MALLOC_MMAP_THRESHOLD_`` maps and unmaps
every large buffer: measured, it made the steps 1.5x (standard) and 1.9x (inverse)
slower at 8 steps per level).

``--srflow``: ``configs/superres_srflow.yaml`` (SRFlow's size: 160-pixel HR
patches, K = 16, 3 levels, batch 16), each mode in a child as above.
``--reconstruction``: max |x - decode(encode(x))| through the whole model and the
worst per-tensor relative gradient difference of the two modes, against depth
and the size of the weights (noise added to every weight).

Results in ``--out``: ``memory_depth.jsonl``, ``memory_depth.md`` (table),
``memory_depth.png`` (plot), ``memory_srflow.jsonl``, ``reconstruction_depth.jsonl``.
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

ROOT = Path(__file__).resolve().parent.parent


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def start_measuring():
    """``(RSS now, peak RSS so far)``, then reset the peak mark to the RSS now."""
    now, before = rss_mb(), peak_rss_mb()
    reset_peak_rss()
    return now, before


def peak_rss_mb():
    """The peak RSS since the process started or since ``reset_peak_rss``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def gpu_memory_mb():
    """``(in use, peak in use)`` in MB on JAX's first device when it is a GPU, else
    ``None``. The peak is the process's (JAX cannot reset it): with the training step
    compiled ahead of time it is the steps' peak unless model set-up took more."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform == "gpu" else None
    if not stats:
        return None
    return stats["bytes_in_use"] / 2 ** 20, stats.get("peak_bytes_in_use", 0) / 2 ** 20


# -- models ------------------------------------------------------------------------
def depth_model(depth, backprop, hidden=32):
    """The colorization flow with ``depth`` steps per level."""
    from cinn.apps.colorization.model import build_model

    model = build_model({"blocks": int(depth), "subnet": {"hidden": hidden, "depth": 2}})
    model.backprop = backprop
    return model


def depth_batch(patch, batch, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((batch, patch, patch, 2)).astype("float32"),
            rng.standard_normal((batch, patch, patch, 1)).astype("float32"))


def srflow_model_and_batch(backprop, batch=None, seed=0):
    """``configs/superres_srflow.yaml``'s model and one batch of random HR patches."""
    import importlib

    import numpy as np

    from cinn.apps.common.config import load_config
    from cinn.apps.common.train import build
    from cinn.apps.superres.task import make_pair

    cfg = load_config("superres", ROOT / "configs" / "superres_srflow.yaml")
    cfg["train"]["backprop"] = backprop
    model = build(importlib.import_module("cinn.apps.superres.task"), cfg)
    crop, bsz = int(cfg["data"]["crop"]), int(batch or cfg["data"]["batch_size"])
    hr = np.random.default_rng(seed).integers(0, 256, (bsz, crop, crop, 3), dtype=np.uint8)
    return model, make_pair(hr, None, int(cfg["model"]["scale"]))


# -- one run (child process) -----------------------------------------------------
class JaxTrainer:
    """JAX: the training step (loss, gradients, Adam) compiled ahead of time, so
    that its first execution, when XLA allocates its temporaries (which it then
    keeps), can be measured apart from compilation."""

    def __init__(self, model, x, c):
        import jax
        import keras
        from keras import ops

        opt = keras.optimizers.Adam(1e-4)
        opt.build(model.trainable_variables)
        self.state = ([v.value for v in model.trainable_variables],
                      [v.value for v in model.non_trainable_variables],
                      [v.value for v in opt.variables])
        self.x, self.c = x, c

        def step(tv, ntv, ov, x, c):
            def loss(tv):
                mapping = list(zip(model.trainable_variables, tv)) + list(
                    zip(model.non_trainable_variables, ntv))
                with keras.StatelessScope(state_mapping=mapping):
                    return ops.mean(model.bits_per_dim(*model.encode(x, c)))

            value, grads = jax.value_and_grad(loss)(tv)
            mapping = list(zip(model.trainable_variables, tv)) + list(zip(opt.variables, ov))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                opt.apply(grads, model.trainable_variables)
            return (value, [scope.get_current_value(v) for v in model.trainable_variables],
                    [scope.get_current_value(v) for v in opt.variables])

        tv, ntv, ov = self.state
        self.compiled = jax.jit(step, donate_argnums=(0, 2)).lower(tv, ntv, ov, x, c).compile()
        self.xla_temp_bytes = self.compiled.memory_analysis().temp_size_in_bytes

    def __call__(self):
        tv, ntv, ov = self.state
        value, tv, ov = self.compiled(tv, ntv, ov, self.x, self.c)
        self.state = (tv, ntv, ov)
        return float(value)


class TfTrainer:
    """TensorFlow: the training step as a ``tf.function`` traced ahead of time (not
    XLA-compiled: XLA would compile on the first call, inside the measurement),
    so that its first execution is measured apart from tracing."""

    xla_temp_bytes = None

    def __init__(self, model, x, c):
        import keras
        import tensorflow as tf

        opt = keras.optimizers.Adam(1e-4)
        opt.build(model.trainable_variables)

        @tf.function
        def step(x, c):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model.bits_per_dim(*model.encode(x, c)))
            opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        self.x, self.c = tf.constant(x), tf.constant(c)
        self.step = step.get_concrete_function(self.x, self.c)

    def __call__(self):
        return float(self.step(self.x, self.c))


def _model_and_batch(spec, mode):
    import keras

    keras.utils.set_random_seed(0)
    if spec["kind"] == "srflow":
        model, (x, c) = srflow_model_and_batch(mode, spec.get("batch"))
    else:
        model = depth_model(spec["depth"], mode, spec.get("hidden", 32))
        x, c = depth_batch(spec["patch"], spec["batch"])
    model.initialize(x, c)
    return model, x, c


def _trainer(model, x, c, spec):
    import keras

    if keras.backend.backend() == "jax":
        return JaxTrainer(model, x, c)
    if keras.backend.backend() == "tensorflow":
        return TfTrainer(model, x, c)
    raise SystemExit(f"no benchmark trainer for the {keras.backend.backend()} backend")


def child(spec):
    """Memory (and step time) of one mode, alone in this process."""
    import keras
    import numpy as np

    model, x, c = _model_and_batch(spec, spec["mode"])
    rss_built = rss_mb()
    t0 = time.perf_counter()
    trainer = _trainer(model, x, c, spec)
    gpu_base = gpu_memory_mb()
    base, peak_before = start_measuring()
    losses, times = [], []
    for _ in range(spec["steps"]):
        t1 = time.perf_counter()
        losses.append(trainer())
        times.append(time.perf_counter() - t1)
    peak = peak_rss_mb()
    gpu = {}
    if gpu_base is not None:  # GPU: device memory beyond weights, optimizer and inputs
        gpu_peak = gpu_memory_mb()[1]
        gpu = {"gpu_base_mb": round(gpu_base[0], 1), "gpu_peak_mb": round(gpu_peak, 1),
               "gpu_activations_mb": round(gpu_peak - gpu_base[0], 1)}
    temp = trainer.xla_temp_bytes
    return {**spec, "backend": keras.backend.backend(), "params": int(model.count_params()),
            "x_shape": list(np.shape(x)), "rss_built_mb": round(rss_built, 1),
            "rss_base_mb": round(base, 1), "activations_mb": round(peak - base, 1),
            "xla_temp_mb": None if temp is None else round(temp / 2 ** 20, 1),
            "peak_rss_steps_mb": round(peak, 1), "peak_rss_mb": round(max(peak, peak_before), 1),
            "compile_and_run_s": round(time.perf_counter() - t0, 1),
            "step_s": round(statistics.median(times), 4),
            "steps_s": [round(t, 4) for t in times], "loss": losses[-1],
            "finite": bool(np.all(np.isfinite(losses))), **gpu}


def timing_child(spec):
    """Step time of both modes in one process, steps alternating, so that the load
    of a shared machine falls on both alike: medians and their ratio."""
    import keras

    trainers = {}
    for mode in ("standard", "inverse"):
        model, x, c = _model_and_batch(spec, mode)
        trainers[mode] = _trainer(model, x, c, spec)
        trainers[mode]()  # first execution: allocations
    times = {mode: [] for mode in trainers}
    for _ in range(spec["steps"]):
        for mode, trainer in trainers.items():
            t0 = time.perf_counter()
            trainer()
            times[mode].append(time.perf_counter() - t0)
    med = {mode: statistics.median(ts) for mode, ts in times.items()}
    return {**spec, "backend": keras.backend.backend(),
            "step_s_standard": round(med["standard"], 4),
            "step_s_inverse": round(med["inverse"], 4),
            "time_ratio": round(med["inverse"] / med["standard"], 3)}


def run_child(spec, timeout):
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=path)
    if not spec.get("timing"):  # memory: freed buffers leave the RSS (slower steps)
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    cmd = [sys.executable, "-m", "benchmarks.memory_depth", "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timeout after {timeout} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {**spec, "error": (proc.stderr or proc.stdout)[-2000:]}


def xla_activations(depths, patches, batch, hidden):
    """JAX: XLA's planned temporary memory of the loss-and-gradient program alone
    (no optimizer; the gradients are its outputs, not temporaries): the memory
    that depends on activations, per (patch, depth, mode). Compiles, never runs."""
    import jax
    import keras
    from keras import ops

    rows = []
    for patch in patches:
        for depth in depths:
            x, c = depth_batch(patch, batch)
            row = {"patch": patch, "depth": depth, "batch": batch, "hidden": hidden}
            for mode in ("standard", "inverse"):
                keras.utils.set_random_seed(0)
                model = depth_model(depth, mode, hidden)
                tv = [v.value for v in model.trainable_variables]
                ntv = [v.value for v in model.non_trainable_variables]

                def loss(tv, model=model, ntv=ntv):
                    mapping = list(zip(model.trainable_variables, tv)) + list(
                        zip(model.non_trainable_variables, ntv))
                    with keras.StatelessScope(state_mapping=mapping):
                        return ops.mean(model.bits_per_dim(*model.encode(x, c)))

                t0 = time.perf_counter()
                compiled = jax.jit(jax.value_and_grad(loss)).lower(tv).compile()
                row[f"grad_temp_mb_{mode}"] = round(
                    compiled.memory_analysis().temp_size_in_bytes / 2 ** 20, 2)
                row[f"compile_s_{mode}"] = round(time.perf_counter() - t0, 1)
                row["params"] = int(model.count_params())
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


# -- reconstruction error and gradient agreement against depth -----------------------
def reconstruction(depths, noises, scales=(1.0, 10.0), patch=16, batch=2):
    """Per (depth, weight noise): max |x - decode(encode(x))| for inputs scaled by
    each of ``scales``, and the worst and median per-tensor relative difference of
    the two modes' gradients (inputs at scale 1)."""
    import keras
    import numpy as np
    from keras import ops

    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import randomize
    from test_reversible import relative_errors

    rows = []
    for depth in depths:
        for noise in noises:
            keras.utils.set_random_seed(0)
            model = depth_model(depth, "standard")
            x, c = depth_batch(patch, batch)
            model.initialize(x, c)
            randomize(model, noise, seed=1)
            row = {"depth": depth, "noise": noise}
            for scale in scales:
                z, _ = model.encode(scale * x, c)
                xr = ops.convert_to_numpy(model.decode(z, c))
                row[f"max_abs_reconstruction_error@{scale:g}"] = float(
                    np.max(np.abs(xr - scale * x)))
                row[f"max_abs_z@{scale:g}"] = float(np.max(np.abs(ops.convert_to_numpy(z))))
            try:
                rel = relative_errors(model, x, c)
            except AssertionError:  # the two losses differ: the flow itself blew up
                rel = {"": float("nan")}
            row["worst_relative_gradient_error"] = max(rel.values())
            row["median_relative_gradient_error"] = float(np.median(list(rel.values())))
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


# -- reports ------------------------------------------------------------------------
def _load(path):
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] \
        if path.exists() else []


def table(rows, xla_rows=()):
    """Markdown: per (patch, depth) both modes' memory and the step-time ratio."""
    mem = {(r["patch"], r["depth"], r["mode"]): r for r in rows
           if not r.get("timing") and "error" not in r}
    tim = {(r["patch"], r["depth"]): r for r in rows if r.get("timing") and "error" not in r}
    act = {(r["patch"], r["depth"]): r for r in xla_rows}
    out = ["| patch | steps/level | params | XLA temporaries MB standard | inverse | "
           "training step MB (RSS) standard | inverse | step s standard | inverse | "
           "time inverse / standard |", "| " + " | ".join(["---"] * 10) + " |"]
    for patch, depth in sorted({k[:2] for k in mem} | set(tim) | set(act)):
        s_, i_ = mem.get((patch, depth, "standard"), {}), mem.get((patch, depth, "inverse"), {})
        t, a = tim.get((patch, depth), {}), act.get((patch, depth), {})

        def f(r, k, fmt="{:.0f}"):
            return "" if r.get(k) is None else fmt.format(r[k])

        params = s_.get("params") or a.get("params")
        # XLA's temporaries: of the gradient program (--xla-activations), else of the
        # whole training step measured by the memory runs (JAX only)
        xs = f(a, 'grad_temp_mb_standard', '{:.1f}') or f(s_, 'xla_temp_mb', '{:.1f}')
        xi = f(a, 'grad_temp_mb_inverse', '{:.1f}') or f(i_, 'xla_temp_mb', '{:.1f}')
        out.append(f"| {patch} | {depth} | {'' if params is None else f'{params / 1e6:.2f} M'} "
                   f"| {xs} | {xi} | {f(s_, 'activations_mb')} | "
                   f"{f(i_, 'activations_mb')} | {f(t, 'step_s_standard', '{:.3f}')} | "
                   f"{f(t, 'step_s_inverse', '{:.3f}')} | {f(t, 'time_ratio', '{:.2f}x')} |")
    for r in rows:
        if "error" in r:
            out.append(f"\nfailed: {json.dumps({k: r[k] for k in r if k != 'error'})}: "
                       f"{r['error'].strip().splitlines()[-1][:200]}")
    return "\n".join(out)


def plot(rows, xla_rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {"standard": "o-", "inverse": "s--"}
    for patch in sorted({r["patch"] for r in ok} | {r["patch"] for r in xla_rows}):
        for mode, style in styles.items():
            rs = sorted((r for r in xla_rows if r["patch"] == patch), key=lambda r: r["depth"])
            if rs:
                ax0.plot([r["depth"] for r in rs], [r[f"grad_temp_mb_{mode}"] for r in rs],
                         style, label=f"{mode}, {patch}px")
            rs = sorted((r for r in ok if r["patch"] == patch and r.get("mode") == mode
                         and not r.get("timing")), key=lambda r: r["depth"])
            if rs and not xla_rows and rs[0].get("xla_temp_mb") is not None:
                ax0.plot([r["depth"] for r in rs], [r["xla_temp_mb"] for r in rs], style,
                         label=f"{mode}, {patch}px")
            if rs:
                ax1.plot([r["depth"] for r in rs], [r["activations_mb"] for r in rs], style,
                         label=f"{mode}, {patch}px")
        rs = sorted((r for r in ok if r["patch"] == patch and r.get("timing")),
                    key=lambda r: r["depth"])
        if rs:
            ax2.plot([r["depth"] for r in rs], [r["time_ratio"] for r in rs], "s--",
                     label=f"{patch}px")
    ax2.axhline(1.0, color="grey", lw=0.8)
    ax2.set_ylim(0.5, max([3.5] + [r["time_ratio"] + 0.2 for r in ok if r.get("timing")]))
    for ax, title in (
            (ax0, "activations: XLA temporaries of the step (MB, JAX)"),
            (ax1, "training step beyond weights + optimizer state (MB, RSS)"),
            (ax2, "step time, inverse / standard")):
        ax.set_xscale("log", base=2)
        ax.set_xticks([4, 8, 16, 32, 64], ["4", "8", "16", "32", "64"])
        ax.set_xlabel("flow steps per level (3 levels, batch 8)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def report(out):
    """``memory_depth.md`` and ``memory_depth.png`` from the JSON lines in ``out``."""
    rows, xla_rows = _load(out / "memory_depth.jsonl"), _load(out / "xla_activations.jsonl")
    (out / "memory_depth.md").write_text(table(rows, xla_rows) + "\n")
    plot(rows, xla_rows, out / "memory_depth.png")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    p.add_argument("--patches", type=int, nargs="+", default=[32, 64])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="steps per memory run")
    p.add_argument("--timing-steps", type=int, default=10,
                   help="steps per mode in the timing runs (0: none)")
    p.add_argument("--timing-patches", type=int, nargs="*",
                   help="patch sizes of the timing runs (default: all)")
    p.add_argument("--modes", nargs="+", default=["standard", "inverse"])
    p.add_argument("--timing-only", action="store_true",
                   help="run only the step-time children (e.g. again on a quiet machine); "
                   "the memory rows already in OUT/memory_depth.jsonl are kept")
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--srflow", action="store_true",
                   help="configs/superres_srflow.yaml at batch 16 instead of the depth sweep")
    p.add_argument("--reconstruction", action="store_true",
                   help="reconstruction error and gradient agreement against depth")
    p.add_argument("--noises", type=float, nargs="+", default=[0.01, 0.03])
    p.add_argument("--xla-activations", action="store_true",
                   help="JAX: XLA's planned memory of the gradient program per depth "
                   "(compiles only)")
    p.add_argument("--report", action="store_true",
                   help="only rewrite memory_depth.md and .png from the results in --out")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(timing_child(spec) if spec.get("timing") else child(spec)), flush=True)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report:
        report(out)
        return 0
    if args.xla_activations:
        rows = xla_activations(args.depths, args.patches, args.batch, args.hidden)
        with open(out / "xla_activations.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        report(out)
        return 0
    if args.reconstruction:
        rows = reconstruction(args.depths, args.noises)
        with open(out / "reconstruction_depth.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        return 0
    machine = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    common = {"steps": args.steps}
    if args.srflow:
        specs = [{"kind": "srflow", "mode": m, **common} for m in args.modes]
        name = "memory_srflow"
    else:
        specs = [] if args.timing_only else [
            {"kind": "depth", "depth": d, "patch": s, "batch": args.batch,
             "hidden": args.hidden, "mode": m, **common}
            for s in args.patches for d in args.depths for m in args.modes]
        timing = args.patches if args.timing_patches is None else args.timing_patches
        if args.timing_steps:
            specs += [{"kind": "depth", "depth": d, "patch": s, "batch": args.batch,
                       "hidden": args.hidden, "timing": True, "steps": args.timing_steps}
                      for s in timing for d in args.depths]
        name = "memory_depth"
    rows = []
    if args.timing_only and not args.srflow:
        rows = [r for r in _load(out / f"{name}.jsonl") if not r.get("timing")]
    (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for spec in specs:
        r = {**run_child(spec, args.timeout), **machine}
        print(json.dumps({k: v for k, v in r.items() if k != "steps_s"}), flush=True)
        rows.append(r)
        with open(out / f"{name}.jsonl", "a") as f:
            f.write(json.dumps(r) + "\n")
    if not args.srflow:
        report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
