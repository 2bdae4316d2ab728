"""Training and sampling speed against FrEIA, % of the machine's matmul peak, and the
full ``cinn train`` step of every app.

The final run (the defaults; about 25-30 minutes on the 2-core CPU, 50 processes; use
a quiet machine: on a shared one PyTorch's OpenMP threads collapse, FrEIA's process CPU
time per step grows 10-40x, and the peak sgemm's CPU/wall, in the report, falls well
below the core count; ``--app-repeats 1`` saves about 6 minutes):

    python -m benchmarks.bench --out benchmarks/results

A smoke run (about 10 minutes):

    python -m benchmarks.bench --steps 3 --repeats 2 --batch-sizes 4 --app-repeats 1 \\
        --app-epochs 2 --app-steps 2 --out /tmp/bench

Tables and plot again from a ``results.jsonl``: ``python -m benchmarks.bench --report-only
--out benchmarks/results``. On a GPU: ``--device gpu`` (and ``--precision float32
mixed_bfloat16``). Every measurement runs in its own fresh process; a benchmark, not a test.

What one run measures, in this order:

1. **Peak**: a 2048 x 2048 float32 matmul (sgemm, all cores) with NumPy, PyTorch,
   TensorFlow and JAX, each in its own process: 3 warm-up products, then the median of
   10 timed ones, in GFLOP/s (2 n^3 per product). The peak is the best library's figure;
   it is measured at the start and at the end of the run and the higher of the two is
   used (a load spike at one end cannot inflate the % of peak).
2. **FLOPs**, per (arch, batch), counted in the first round's processes after their
   timing: one training step (forward + backward) and one sampling pass (the inverse,
   forward only) of the FrEIA twin of the flow (``benchmarks/freia_arch.py``), with
   ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products).
   Both libraries are credited with these FLOPs. As a cross-check, the same quantities
   are counted on cinn's own flow from the jaxpr of its JAX training step / decode pass
   (``jaxpr_flops``: every ``conv_general_dilated`` and ``dot_general``, 2 x output
   elements x contracted size; the count the app steps use, see 4.); the two are
   written side by side (they agree to 1.5%: cinn's 1x1 convolutions are learned,
   FrEIA's twin has fixed ones).
3. **Bare flow**, per (arch, batch, precision): the app's flow (levels, subnets, clamp
   from ``configs/<app>.yaml``) with the conditioning network left out and its per-level
   features fed as inputs, in cinn (each Keras backend) and in FrEIA. The processes are
   interleaved, FrEIA, cinn TF, cinn JAX, FrEIA, cinn TF, ..., ``--repeats`` rounds.
   Within a process: 3 warm-up steps, then ``--steps`` training steps (forward, backward,
   Adam; cinn: Keras' compiled step as ``model.fit`` runs it, as in ``cinn train``;
   ``train_on_batch`` would add a state sync per call) timed one by one, each synchronised,
   and the median taken; likewise sampling passes (cinn: ``cinn.compile.compiled(model,
   "decode")``; FrEIA: ``rev=True``). Process CPU time (``time.process_time``) per step is
   recorded beside the wall time. Across rounds: median and [min-max]; the cinn / FrEIA
   ratio is formed per round (paired) and its median and [min-max] reported.
4. **Full app step**, per app: ``cinn train APP`` itself (``cinn.cli``'s parser and
   ``train`` command, the app's config, data set and model), with the ``epochs`` and
   steps per epoch of ``--app-epochs`` / ``--app-steps``, in a temporary run folder
   with TensorBoard logging switched off; a Keras callback records the time of every
   batch end. The first ``--app-warmup-epochs`` epochs (compilation) are discarded;
   the median step is reported, and the sustained rate (all timed batches, data
   loading at epoch starts included). In the same process, afterwards, the app's bare
   flow at the app's own shapes (its conditioning features computed once and fed as
   inputs) is timed as in 3. FLOPs of the app step: the jaxpr count of ``cinn train``'s
   own JAX training step (flow + conditioning network, forward + backward, standard
   backprop), in the first JAX round after the timing; of its bare flow: the jaxpr
   count of the bare training step. app / bare = the app step's GFLOP/s over the bare
   step's, per process (paired).
   Data: ``--data`` (default ``../shared/data/train/bsds432``); when missing, a few
   synthetic PNGs in a temporary folder (noted in the report).

Results in ``--out``: ``results.jsonl`` (a meta line: date, command, versions, CPU,
peak; then one line per process), ``results.md`` (tables) and ``throughput.png``.
"""
import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHS = {
    # app -> shape of one condition at the benchmark size
    "colorization": (64, 64, 1),   # L of a 64x64 crop
    "superres": (40, 40, 3),       # LR of a 160x160 HR patch at 4x
}
APPS = ("colorization", "superres", "inpainting")
PEAK_LIBS = ("numpy", "torch", "tensorflow", "jax")
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "train" / "bsds432"
WARMUP_STEPS = 3
LIB_ORDER = ("torch", "tensorflow", "jax")  # table columns: FrEIA, cinn TF, cinn JAX
FLOP_KEYS = ("twin_train_flops", "twin_sample_flops", "cinn_train_flops", "cinn_sample_flops",
             "app_flops", "bare_flops")


def arch_spec(arch, cond_shape=None):
    """The app's flow (levels, shapes, clamp) as built from ``configs/<app>.yaml``,
    and the shapes of the per-level condition features at the benchmark size."""
    import importlib

    import numpy as np
    from keras import ops

    from cinn.apps.common.config import load_config

    task = importlib.import_module(f"cinn.apps.{arch}.task")
    model = task.build_model(load_config(arch)["model"])
    c = np.zeros((1,) + tuple(cond_shape or ARCHS[arch]), "float32")
    feats = model.condition_features(ops.convert_to_tensor(c))
    return {"levels": [dict(lv) for lv in model.levels],
            "x_shape": tuple(int(d) for d in model.x_shape_for(c)),
            "cond_channels": [None if f is None else int(f.shape[-1]) for f in feats],
            "clamp": model.clamp}


def level_resolutions(levels, x_shape):
    h, w, ch = x_shape
    out = []
    for lv in levels:
        if lv.get("downsample"):
            h, w, ch = h // 2, w // 2, ch * 4
        out.append((h, w))
    return out


def with_precision(levels, precision):
    """The levels with their coupling / injector / prior subnets in ``precision``
    (a Keras dtype policy; the flow arithmetic stays float32)."""
    if precision == "float32":
        return levels
    return [{**lv, "subnet": {**(lv.get("subnet") or {}), "dtype": precision}} for lv in levels]


# -- pure helpers: statistics and FLOP counting ---------------------------------------
def summarize(values):
    """Median, min, max and count of ``values`` (None where empty)."""
    values = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def timed(fn, n):
    """Call ``fn`` (which must wait for its result) ``n`` times; per-call wall and
    process CPU seconds."""
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def _subjaxprs(params):
    stack = list(params.values())
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif hasattr(v, "eqns"):
            yield v
        elif hasattr(getattr(v, "jaxpr", None), "eqns"):
            yield v.jaxpr


def jaxpr_flops(jaxpr):
    """FLOPs of the convolutions and matrix products of a (closed) jaxpr:
    2 x output elements x contracted size (input features x kernel window for a
    convolution), sub-jaxprs included (a ``scan`` times its length, the largest
    branch of a ``cond``, a ``while`` body once)."""
    import numpy as np

    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(
                np.prod([lhs[d] for d in contract]))
        elif name == "conv_general_dilated":
            rhs_spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, *spatial)
            rhs = eqn.invars[1].aval.shape
            total += 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(
                np.prod([rhs[d] for d in rhs_spec[1:]]))
        subs = [jaxpr_flops(s) for s in _subjaxprs(eqn.params)]
        if name == "cond":
            total += max(subs, default=0)
        elif name == "scan":
            total += int(eqn.params.get("length", 1)) * sum(subs)
        else:
            total += sum(subs)
    return total


def keras_train_step_flops(model, inputs):
    """Conv/matmul FLOPs (``jaxpr_flops``) of one Keras training step of ``model``
    (compiled, optimizer built) on ``inputs``, traced on the JAX backend."""
    import jax

    state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                 optimizer_variables=True, metrics_variables=True)
    return jaxpr_flops(jax.make_jaxpr(model.train_step)(state, (inputs, None, None)))


# -- the flows ------------------------------------------------------------------------
def flow_only(spec, feat_shapes, precision="float32", seed=0):
    """cinn's flow of ``spec`` taking the per-level condition features directly
    (no conditioning network)."""
    from keras import ops

    from cinn import ConditionalINN

    class FlowOnly(ConditionalINN):
        def _check(self, x, c):
            pass

        def condition_features(self, c):
            c = list(c)
            if len(c) == len(feat_shapes):
                return c
            known = iter(c)  # the levels without features left out (``fit`` data)
            return [None if s is None else next(known) for s in feat_shapes]

        def _dummy_inputs(self):
            return ops.zeros((1,) + tuple(spec["x_shape"])), [
                None if s is None else ops.zeros((1,) + tuple(s)) for s in feat_shapes]

    return FlowOnly(tuple(spec["x_shape"]), (1,), with_precision(spec["levels"], precision),
                    clamp=spec["clamp"], seed=seed)


def _cinn_inputs(spec, batch, seed=0):
    import numpy as np

    res = level_resolutions(spec["levels"], spec["x_shape"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(spec["x_shape"])).astype("float32")
    feats = [None if c is None else rng.standard_normal((batch, h, w, c)).astype("float32")
             for (h, w), c in zip(res, spec["cond_channels"])]
    return x, feats


def compiled_flow(spec, x, feats, precision="float32", seed=0):
    """cinn's bare flow of ``spec`` (``flow_only``), initialised on ``(x, feats)`` and
    compiled with Adam: the model every timing, FLOP count and profile here runs."""
    import keras

    model = flow_only(spec, [None if f is None else f.shape[1:] for f in feats], precision,
                      seed)
    model.initialize(x, feats)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    return model


def fit_batch(x, feats):
    """``(x, feats)`` as ``fit`` data: no ``None``, no list."""
    return x, tuple(f for f in feats if f is not None)


def repeated(data):
    """The one batch ``data`` forever, as a ``fit`` generator (one element: all of
    ``data`` is the model's x)."""
    while True:
        yield (data,)


def fit_step_times(model, data, steps, warmup=WARMUP_STEPS):
    """Per-step (wall, CPU) seconds of ``model.fit`` on the one batch ``data`` repeated:
    the compiled step as ``cinn train`` runs it (Keras keeps the state on the device
    between steps; ``train_on_batch`` syncs it at every call). A first ``fit`` of
    ``warmup`` steps compiles; the second is timed, each step waited for
    (``StepTimer``)."""
    model.fit(repeated(data), epochs=1, steps_per_epoch=warmup, verbose=0, shuffle=False)
    timer = StepTimer.make()
    model.fit(repeated(data), epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
              callbacks=[timer])
    return step_times(timer.epochs, warmup_epochs=0)


def time_cinn_flow(spec, x, feats, steps, precision="float32", seed=0, sample=True):
    """Per-step wall / CPU seconds of cinn's bare flow: training (``fit_step_times``)
    and sampling (compiled ``decode``); the model."""
    import keras
    import numpy as np
    from keras import ops

    from cinn.compile import compiled

    keras.utils.set_random_seed(seed)
    model = compiled_flow(spec, x, feats, precision, seed)
    out = {}
    out["train_wall"], out["train_cpu"] = fit_step_times(model, fit_batch(x, feats), steps)
    if sample:
        rng = np.random.default_rng(seed + 1)
        z = rng.standard_normal((len(x), int(np.prod(x.shape[1:])))).astype("float32")
        decode = compiled(model, "decode")

        def one():
            np.asarray(ops.convert_to_numpy(decode(z, feats)))

        timed(one, 2)
        out["sample_wall"], out["sample_cpu"] = timed(one, max(3, steps // 2))
    return out, model


def _freia_setup(spec, batch, device, seed=0):
    import numpy as np
    import torch

    from benchmarks.freia_arch import build_freia

    torch.manual_seed(seed)
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    res = level_resolutions(spec["levels"], spec["x_shape"])
    net = build_freia(spec["levels"], spec["x_shape"], spec["cond_channels"], spec["clamp"],
                      seed).to(dev)
    rng = np.random.default_rng(seed)
    h, w, c = spec["x_shape"]
    x = torch.tensor(rng.standard_normal((batch, c, h, w)), dtype=torch.float32, device=dev)
    feats = [torch.tensor(rng.standard_normal((batch, ch, hh, ww)), dtype=torch.float32,
                          device=dev) for (hh, ww), ch in zip(res, spec["cond_channels"])
             if ch is not None]
    return net, x, feats, dev


def _freia_loss(net, x, feats, autocast=contextlib.nullcontext()):
    with autocast:
        z, log_det = net(x, c=feats)
    z = z if isinstance(z, (list, tuple)) else [z]
    nll = sum(0.5 * (zi.float() ** 2).flatten(1).sum(1) for zi in z) - log_det
    return nll.mean()


def _freia_latents(net, x, feats):
    import torch

    with torch.no_grad():
        z = net(x, c=feats)[0]
        return [torch.randn_like(zi) for zi in (z if isinstance(z, (list, tuple)) else [z])]


def time_freia_flow(spec, batch, steps, device, seed=0, precision="float32"):
    import torch

    net, x, feats, dev = _freia_setup(spec, batch, device, seed)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    # FrEIA's way to mixed precision: PyTorch autocast around the forward pass
    autocast = (torch.autocast(dev.type, dtype=getattr(torch, precision.split("_")[1]))
                if precision != "float32" else contextlib.nullcontext())

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step():
        loss = _freia_loss(net, x, feats, autocast)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.detach().item()
        sync()

    out = {}
    timed(step, WARMUP_STEPS)
    out["train_wall"], out["train_cpu"] = timed(step, steps)
    z = _freia_latents(net, x, feats)

    def one():
        with torch.no_grad(), autocast:
            net(z, c=feats, rev=True)
        sync()

    timed(one, 2)
    out["sample_wall"], out["sample_cpu"] = timed(one, max(3, steps // 2))
    return out, net, x, feats


def twin_flops(net, x, feats):
    """Conv/matmul FLOPs (``torch.utils.flop_counter``) of one training step
    (forward + backward) and one sampling pass (``rev=True``) of a FrEIA net."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        _freia_loss(net, x, feats).backward()
    net.zero_grad()
    out = {"twin_train_flops": int(fc.get_total_flops())}
    z = _freia_latents(net, x, feats)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        net(z, c=feats, rev=True)
    out["twin_sample_flops"] = int(fc.get_total_flops())
    return out


def cinn_flow_flops(model, x, feats):
    """The same two counts on cinn's flow (``jaxpr_flops``; JAX backend)."""
    import jax
    import numpy as np

    z = np.zeros((len(x), int(np.prod(x.shape[1:]))), "float32")
    return {"cinn_train_flops": keras_train_step_flops(model, (x, feats)),
            "cinn_sample_flops": jaxpr_flops(jax.make_jaxpr(model.decode)(z, feats))}


def peak_memory_mb(framework, device):
    if device == "gpu":
        if framework == "freia":
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use", 0) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _medians(t, batch):
    """Per-process figures from per-call timings."""
    out = {}
    if "train_wall" in t:
        out["train_step_s"] = statistics.median(t["train_wall"])
        out["train_cpu_s"] = statistics.median(t["train_cpu"])
        out["train_steps_per_s"] = 1 / out["train_step_s"]
        out["train_wall_all"] = [round(v, 5) for v in t["train_wall"]]
    if "sample_wall" in t:
        out["sample_pass_s"] = statistics.median(t["sample_wall"])
        out["sample_cpu_s"] = statistics.median(t["sample_cpu"])
        out["sample_images_per_s"] = batch / out["sample_pass_s"]
    return out


# -- the measurements, one per process ------------------------------------------------
def measure_bench(framework, arch, batch, steps, device, precision="float32",
                  count_flops=False):
    """One library's bare flow: per-step timings (and, with ``count_flops``, after
    the timing: the FrEIA twin's FLOPs, or cinn's jaxpr count on JAX)."""
    spec = arch_spec(arch)
    flops = {}
    if framework == "cinn":
        import keras

        x, feats = _cinn_inputs(spec, batch)
        t, model = time_cinn_flow(spec, x, feats, steps, precision)
        params, backend = model.count_params(), keras.backend.backend()
        mem = peak_memory_mb(framework, device)
        if count_flops and backend == "jax":
            flops = cinn_flow_flops(model, x, feats)
    else:
        t, net, x, feats = time_freia_flow(spec, batch, steps, device, precision=precision)
        params, backend = sum(p.numel() for p in net.parameters()), "torch"
        mem = peak_memory_mb(framework, device)
        if count_flops:
            flops = twin_flops(net, x, feats)
    return {"kind": "bench", "framework": framework, "backend": backend, "arch": arch,
            "batch": batch, "device": device, "precision": precision, **_medians(t, batch),
            "peak_mem_mb": round(mem, 1), "params": int(params), **flops}


def measure_flops(arch, batch):
    """Training-step and sampling-pass FLOPs of the FrEIA twin (torch counter) and,
    when JAX is the Keras backend, of cinn's flow (jaxpr count); for runs without
    FrEIA timings or without the JAX backend."""
    import keras

    spec = arch_spec(arch)
    net, x, feats, _ = _freia_setup(spec, batch, "cpu")
    out = {"kind": "flops", "arch": arch, "batch": batch, **twin_flops(net, x, feats)}
    if keras.backend.backend() == "jax":
        cx, cfeats = _cinn_inputs(spec, batch)
        model = compiled_flow(spec, cx, cfeats)
        model.train_on_batch((cx, cfeats))
        out.update(cinn_flow_flops(model, cx, cfeats))
    return out


def measure_peak(lib, device="cpu", n=2048, reps=10):
    """Median GFLOP/s of an n x n float32 matmul with ``lib``."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype("float32") for _ in range(2))
    if lib == "numpy":
        def mm():
            a @ b
    elif lib == "torch":
        import torch

        dev = "cuda" if device == "gpu" else "cpu"
        ta, tb = torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev)

        def mm():
            (ta @ tb).sum().item()
    elif lib == "tensorflow":
        import tensorflow as tf

        ta, tb = tf.constant(a), tf.constant(b)

        def mm():
            tf.linalg.matmul(ta, tb).numpy()
    elif lib == "jax":
        import jax
        import jax.numpy as jnp

        ja, jb = jnp.asarray(a), jnp.asarray(b)
        f = jax.jit(jnp.matmul)

        def mm():
            f(ja, jb).block_until_ready()
    else:
        raise ValueError(lib)
    timed(mm, 3)
    wall, cpu = timed(mm, reps)
    return {"kind": "peak", "lib": lib, "device": device, "n": n,
            "gflops": 2 * n ** 3 / statistics.median(wall) / 1e9,
            "gflops_best": 2 * n ** 3 / min(wall) / 1e9,
            "cpu_over_wall": sum(cpu) / sum(wall)}


class StepTimer:
    """A Keras callback (built lazily: keras is imported by the measuring process
    only) recording (wall, CPU) time at every epoch start and batch end."""

    @staticmethod
    def make():
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.epochs = []

            def on_epoch_begin(self, epoch, logs=None):
                self.epochs.append([(time.perf_counter(), time.process_time())])

            def on_train_batch_end(self, batch, logs=None):
                if logs and "loss" in logs:  # wait for the step's result
                    float(keras.ops.convert_to_numpy(logs["loss"]))
                self.epochs[-1].append((time.perf_counter(), time.process_time()))

        return _Timer()


def step_times(epochs, warmup_epochs=1):
    """Per-step (wall, CPU) seconds of the epochs after ``warmup_epochs`` from a
    ``StepTimer``'s ``[[(t, cpu) at epoch start, at batch 1 end, ...], ...]``; the
    first step of an epoch is counted from the epoch's start."""
    wall, cpu = [], []
    for marks in epochs[warmup_epochs:]:
        for (t0, c0), (t1, c1) in zip(marks, marks[1:]):
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
    return wall, cpu


def _run_cinn_train(app, data_dir, epochs, steps, out_dir, on_done):
    """``cinn train APP --data DATA --out OUT --epochs E --steps S`` in this process,
    with a ``StepTimer`` and no TensorBoard; ``on_done(model, data, timer)`` is
    called when ``cinn.training.train`` returns."""
    import cinn.apps.common.train as app_train
    import cinn.training as training
    from cinn.cli import build_parser

    real = training.train
    timer = StepTimer.make()

    def wrapped(model, data, *args, callbacks=(), **kwargs):
        kwargs["tensorboard"] = False
        history = real(model, data, *args, callbacks=list(callbacks) + [timer], **kwargs)
        on_done(model, data, timer)
        return history

    training.train = wrapped
    if hasattr(app_train, "train"):  # should train ever be imported at module level
        app_train.train = wrapped
    try:
        args = build_parser().parse_args(
            ["train", app, "--data", str(data_dir), "--out", str(out_dir), "--epochs",
             str(epochs), "--steps", str(steps), "--verbose", "0"])
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the RESULT line
            rc = args.func(args)
    finally:
        training.train = real
    if rc:
        raise RuntimeError(f"cinn train {app} exited with {rc}")
    if not timer.epochs:
        raise RuntimeError("the step timer was never called: cinn train did not go "
                           "through cinn.training.train")
    return timer


def _first_batch(model, data):
    import numpy as np
    from keras import ops

    from cinn.training import first_batch

    x, c = first_batch(data)
    feats = [None if f is None else np.asarray(ops.convert_to_numpy(f), "float32")
             for f in model.condition_features(ops.convert_to_tensor(np.asarray(c)))]
    x = np.asarray(x, "float32")
    spec = {"levels": [dict(lv) for lv in model.levels], "x_shape": tuple(x.shape[1:]),
            "cond_channels": [None if f is None else int(f.shape[-1]) for f in feats],
            "clamp": model.clamp}
    return x, c, feats, spec


def app_step_flops(model, x, c, bare):
    """Conv/matmul FLOPs (jaxpr count, JAX backend) of one ``cinn train`` step of the
    app ``model`` (flow + conditioning network, forward + backward; standard backprop,
    and as configured) and of one training step of its ``bare`` flow."""
    import numpy as np
    from keras import ops

    out = {}
    executed = keras_train_step_flops(model, (x, c))
    mode = getattr(model, "backprop", "standard")
    if mode != "standard":
        model.backprop = "standard"
        try:
            out["app_flops"] = keras_train_step_flops(model, (x, c))
        finally:
            model.backprop = mode
    else:
        out["app_flops"] = executed
    out["app_flops_executed"] = executed
    feats = [None if f is None else np.asarray(ops.convert_to_numpy(f), "float32")
             for f in model.condition_features(ops.convert_to_tensor(np.asarray(c)))]
    out["bare_flops"] = keras_train_step_flops(bare, (x, feats))
    return out


def measure_app(app, data_dir, epochs, steps, bare_steps, warmup_epochs=1, count_flops=False):
    """Steps of ``cinn train APP`` and of the app's bare flow at the same shapes
    (with ``count_flops`` on JAX, after the timing: ``app_step_flops``)."""
    import keras

    got = {}

    def on_done(model, data, timer):
        got["params"] = model.count_params()
        got["backprop"] = getattr(model, "backprop", "standard")
        got["bare_inputs"] = _first_batch(model, data)
        got["batch"] = len(got["bare_inputs"][0])
        got["model"] = model

    with tempfile.TemporaryDirectory() as tmp:
        timer = _run_cinn_train(app, data_dir, epochs, steps, Path(tmp) / "run", on_done)
    wall, cpu = step_times(timer.epochs, warmup_epochs)
    if not wall:
        raise RuntimeError("no timed steps: raise --app-epochs above --app-warmup-epochs")
    x, c, feats, spec = got.pop("bare_inputs")
    model = got.pop("model")
    bare, bare_model = time_cinn_flow(spec, x, feats, bare_steps, sample=False)
    mem = peak_memory_mb("cinn", "cpu")
    flops = {}
    if count_flops and keras.backend.backend() == "jax":
        flops = app_step_flops(model, x, c, bare_model)
    return {"kind": "app", "app": app, "backend": keras.backend.backend(), **got,
            "app_step_s": statistics.median(wall), "app_cpu_s": statistics.median(cpu),
            "app_steps_per_s": 1 / statistics.median(wall),
            "app_sustained_steps_per_s": len(wall) / sum(wall),
            "app_wall_all": [round(v, 5) for v in wall],
            "bare_step_s": statistics.median(bare["train_wall"]),
            "bare_cpu_s": statistics.median(bare["train_cpu"]),
            "bare_steps_per_s": 1 / statistics.median(bare["train_wall"]),
            "peak_mem_mb": round(mem, 1), **flops}


def measure_app_flops(app, data_dir):
    """``app_step_flops`` of a one-step ``cinn train APP`` (JAX backend), for runs
    whose app timings do not include JAX."""
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError("app FLOPs are counted on the JAX backend")
    got = {}

    def on_done(model, data, timer):
        x, c, feats, spec = _first_batch(model, data)
        bare = compiled_flow(spec, x, feats)
        bare.train_on_batch((x, feats))
        got.update(app_step_flops(model, x, c, bare), batch=len(x),
                   backprop=getattr(model, "backprop", "standard"))

    with tempfile.TemporaryDirectory() as tmp:
        _run_cinn_train(app, data_dir, 1, 1, Path(tmp) / "run", on_done)
    return {"kind": "appflops", "app": app, **got}


def measure(job, steps, device):
    kind = job["kind"]
    if kind in ("bench", "app", "appflops") and job.get("framework", "cinn") == "cinn":
        import cinn  # noqa: F401 - first: it sets XLA's CPU flags before JAX starts
    if kind == "bench":
        return measure_bench(job["framework"], job["arch"], job["batch"], steps, device,
                             job.get("precision", "float32"), job.get("count_flops", False))
    if kind == "flops":
        return measure_flops(job["arch"], job["batch"])
    if kind == "peak":
        return measure_peak(job["lib"], device)
    if kind == "app":
        return measure_app(job["app"], job["data"], job["epochs"], job["steps"], steps,
                           job.get("warmup_epochs", 1), job.get("count_flops", False))
    if kind == "appflops":
        return measure_app_flops(job["app"], job["data"])
    raise ValueError(kind)


# -- report ---------------------------------------------------------------------------
def versions():
    out = {"python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "cpu_model": cpu_model()}
    from importlib import metadata

    for dist in ("keras", "tensorflow", "jax", "jaxlib", "torch", "FrEIA", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def peak_of(rows):
    """The machine's peak GFLOP/s: the best library's median, the higher of the
    run's start and end measurements; per library and phase for the report."""
    by = {}
    for r in rows:
        if r.get("kind") == "peak":
            by.setdefault(r.get("phase", "start"), {})[r["lib"]] = r
    best = max((max(x["gflops"] for x in v.values()) for v in by.values() if v), default=None)
    return best, by


def _fmt(x, digits=3):
    if x is None:
        return "-"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    return f"{x:.{max(0, digits - 1 - mag)}f}"


def _fmt_range(s, digits=3, suffix=""):
    if s is None:
        return "-"
    if s["n"] == 1:
        return f"{_fmt(s['median'], digits)}{suffix}"
    return (f"{_fmt(s['median'], digits)}{suffix} "
            f"[{_fmt(s['min'], digits)}-{_fmt(s['max'], digits)}]")


def _fmt_ratio(s):
    if s is None:
        return "-"
    if s["n"] == 1:
        return f"{s['median']:.2f}x"
    return f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]"


def paired_ratios(rows_a, rows_b, key):
    """Per-round ratios a / b of ``key`` (rows matched by their ``round``)."""
    b = {r.get("round"): r[key] for r in rows_b if r.get(key)}
    return [r[key] / b[r.get("round")] for r in rows_a
            if r.get(key) and r.get("round") in b]


def _lib_key(fb):
    framework, backend = fb[0], fb[1]
    return (framework != "freia",
            LIB_ORDER.index(backend) if backend in LIB_ORDER else len(LIB_ORDER), backend)


def bench_table(rows, flops, peak):
    """The issue's table: one line per (arch, batch, device, precision)."""
    bench = [r for r in rows if r.get("kind", "bench") == "bench"]
    libs = sorted({(r["framework"], r["backend"]) for r in bench}, key=_lib_key)
    ref = ("freia", "torch")

    def name(fb):
        return "FrEIA" if fb == ref else f"cinn {fb[1]}"

    head = ["arch"] + [f"{name(fb)} train" for fb in libs] + [
        f"{name(fb)} sample" for fb in libs]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    keys = sorted({(r["arch"], r["batch"], r.get("device", "cpu"),
                    r.get("precision", "float32")) for r in bench})
    for arch, batch, device, prec in keys:
        group = {fb: [r for r in bench if (r["arch"], r["batch"], r.get("device", "cpu"),
                                           r.get("precision", "float32"))
                      == (arch, batch, device, prec) and (r["framework"], r["backend"]) == fb]
                 for fb in libs}
        f = flops.get((arch, batch), {})
        label = f"{arch}, batch {batch}" + ("" if device == "cpu" else f", {device}") + (
            "" if prec == "float32" else f", {prec}")
        cells = [label]
        for what, key, unit, fkey in (("train", "train_steps_per_s", "step/s",
                                       "twin_train_flops"),
                                      ("sample", "sample_images_per_s", "img/s",
                                       "twin_sample_flops")):
            for fb in libs:
                s = summarize(r.get(key) for r in group[fb])
                if s is None:
                    cells.append("-")
                    continue
                cell = _fmt_range(s) + f" {unit}"
                per = f.get(fkey)
                if per:
                    rate = s["median"] * per / 1e9 / (batch if what == "sample" else 1)
                    cell += f" = {_fmt(rate)} GFLOP/s"
                    if peak:
                        cell += f" ({100 * rate / peak:.0f}% of peak)"
                if fb != ref and group.get(ref):
                    cell += ", " + _fmt_ratio(summarize(paired_ratios(group[fb], group[ref],
                                                                      key)))
                cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cpu_table(rows):
    bench = [r for r in rows if r.get("kind", "bench") == "bench"]
    lines = ["| arch | batch | precision | library | train ms/step (wall) | train ms/step "
             "(process CPU) | CPU / wall | sample ms/pass (wall) | sample ms/pass (CPU) | "
             "peak MB |", "|" + " --- |" * 10]
    keys = sorted({(r["arch"], r["batch"], r.get("precision", "float32"), r["framework"],
                    r["backend"]) for r in bench}, key=lambda k: (k[:3], _lib_key(k[3:])))
    for arch, batch, prec, fw, be in keys:
        g = [r for r in bench if (r["arch"], r["batch"], r.get("precision", "float32"),
                                  r["framework"], r["backend"]) == (arch, batch, prec, fw, be)]

        def ms(key):
            s = summarize(1000 * r[key] for r in g if r.get(key) is not None)
            return _fmt_range(s)

        w = summarize(r.get("train_step_s") for r in g)
        c = summarize(r.get("train_cpu_s") for r in g)
        ratio = f"{c['median'] / w['median']:.2f}" if w and c else "-"
        mem = summarize(r.get("peak_mem_mb") for r in g)
        lines.append(f"| {arch} | {batch} | {prec} | {'FrEIA' if fw == 'freia' else 'cinn ' + be}"
                     f" | {ms('train_step_s')} | {ms('train_cpu_s')} | {ratio} | "
                     f"{ms('sample_pass_s')} | {ms('sample_cpu_s')} | "
                     f"{_fmt(mem['median'], 4) if mem else '-'} |")
    return lines


def flops_table(flops):
    lines = ["| arch | batch | train GFLOP/step, FrEIA twin (torch counter) | cinn flow "
             "(jaxpr count) | cinn / twin | sample GFLOP/pass, twin | cinn flow (jaxpr) | "
             "cinn / twin |", "|" + " --- |" * 8]
    for (arch, batch), f in sorted(flops.items()):
        def g(key):
            return _fmt(f[key] / 1e9, 4) if f.get(key) else "-"

        def ratio(a, b):
            return f"{f[a] / f[b]:.3f}" if f.get(a) and f.get(b) else "-"

        lines.append(f"| {arch} | {batch} | {g('twin_train_flops')} | {g('cinn_train_flops')} "
                     f"| {ratio('cinn_train_flops', 'twin_train_flops')} | "
                     f"{g('twin_sample_flops')} | {g('cinn_sample_flops')} | "
                     f"{ratio('cinn_sample_flops', 'twin_sample_flops')} |")
    return lines


def app_table(rows, peak):
    apps = [r for r in rows if r.get("kind") == "app"]
    aflops = flops_by_app(rows)
    lines = ["| app | batch | backend | app step/s | sustained step/s | GFLOP/step "
             "(flow + cond. net) | app GFLOP/s | % of peak | bare flow step/s | bare "
             "GFLOP/step | bare GFLOP/s | app / bare GFLOP/s |", "|" + " --- |" * 12]
    for app, be in sorted({(r["app"], r["backend"]) for r in apps},
                          key=lambda k: (APPS.index(k[0]) if k[0] in APPS else 9,
                                         _lib_key(("cinn", k[1])))):
        g = [r for r in apps if (r["app"], r["backend"]) == (app, be)]
        f = aflops.get(app, {})
        a, b = f.get("app_flops"), f.get("bare_flops")
        s_app = summarize(r.get("app_steps_per_s") for r in g)
        s_sus = summarize(r.get("app_sustained_steps_per_s") for r in g)
        s_bare = summarize(r.get("bare_steps_per_s") for r in g)
        rate = s_app["median"] * a / 1e9 if a and s_app else None
        bare_rate = s_bare["median"] * b / 1e9 if b and s_bare else None
        frac = summarize(100 * r["app_steps_per_s"] * a / (r["bare_steps_per_s"] * b)
                         for r in g if r.get("bare_steps_per_s")) if a and b else None
        lines.append(
            f"| {app} | {g[0].get('batch', '-')} | {be} | {_fmt_range(s_app)} | "
            f"{_fmt_range(s_sus)} | {_fmt(a / 1e9, 4) if a else '-'} | {_fmt(rate)} | "
            f"{f'{100 * rate / peak:.0f}%' if rate and peak else '-'} | {_fmt_range(s_bare)} | "
            f"{_fmt(b / 1e9, 4) if b else '-'} | {_fmt(bare_rate)} | "
            f"{_fmt_range(frac, 2, '%')} |")
    return lines


def flops_by_arch(rows):
    """(arch, batch) -> the FLOP counts found in any row of that arch and batch."""
    out = {}
    for r in rows:
        if r.get("kind", "bench") in ("bench", "flops"):
            d = out.setdefault((r["arch"], r["batch"]), {})
            for k in FLOP_KEYS[:4]:
                if r.get(k) and not d.get(k):
                    d[k] = r[k]
    return {k: v for k, v in out.items() if v}


def flops_by_app(rows):
    """app -> its app and bare step FLOPs (from a JAX app row or an appflops row)."""
    out = {}
    for r in rows:
        if r.get("kind") in ("app", "appflops") and r.get("app_flops"):
            out.setdefault(r["app"], r)
    return out


def render_report(rows, meta):
    """``results.md``'s text from the measurement rows and the run's meta."""
    peak, by_phase = peak_of(rows)
    lines = ["# Speed: cinn vs FrEIA, % of peak, the full `cinn train` step", ""]
    lines.append(f"Measured {meta.get('date', '?')} on {meta.get('cpu_model') or '?'} "
                 f"({meta.get('cpus', '?')} cores), `{meta.get('command', '?')}`.")
    vers = ", ".join(f"{k} {meta[k]}" for k in ("python", "keras", "tensorflow", "jax",
                                                 "torch", "FrEIA", "numpy") if meta.get(k))
    lines.append(f"Versions: {vers}.")
    if meta.get("loadavg_start") is not None:
        lines.append(f"Load average (1 min) at start {meta['loadavg_start']:.2f}, at end "
                     f"{meta.get('loadavg_end') or float('nan'):.2f}; "
                     f"{meta.get('minutes', '?')} min in all.")
    if peak:
        parts = "; ".join(f"{phase}: " + ", ".join(
            f"{lib} {r['gflops']:.0f}" + (f" (CPU/wall {r['cpu_over_wall']:.2f})"
                                          if r.get("cpu_over_wall") else "")
            for lib, r in libs.items()) for phase, libs in by_phase.items())
        lines.append(f"**Peak**: {peak:.0f} GFLOP/s (2048x2048 float32 matmul, all cores, "
                     f"median of 10; best library, higher of start and end; {parts}; "
                     f"a CPU/wall well below the core count means other load).")
    lines.append(f"Settings: {meta.get('settings', '')}.")
    if meta.get("synthetic_data"):
        lines.append("**Data**: the training folder was missing: synthetic images were used "
                     "for the app steps.")
    lines += ["", "## Bare flow (conditioning network left out on both sides)", "",
              "Median over rounds [min-max]; each run in its own process, the libraries "
              "interleaved round by round; a run's figure is its median step. GFLOP/s: the "
              "FrEIA twin's FLOPs (torch counter) over the time, for every library; "
              "ratio: cinn / FrEIA per round (paired), median [min-max].", ""]
    lines += bench_table(rows, flops_by_arch(rows), peak)
    lines += ["", "FLOPs of one step / pass (convolutions and matrix products; training = "
              "forward + backward):", ""]
    lines += flops_table(flops_by_arch(rows))
    lines += ["", "Process CPU time (all threads) per step beside wall time, medians over "
              "rounds [min-max] (less sensitive to other load than wall time):", ""]
    lines += cpu_table(rows)
    if any(r.get("kind") == "app" for r in rows):
        lines += ["", "## Full app training step (`cinn train APP`, the app's config)", "",
                  "app step/s: median step of the epochs after the warm-up; sustained: all "
                  "timed steps, data loading at epoch starts included; medians over rounds "
                  "[min-max]. FLOPs: jaxpr count (convolutions and matrix products, forward "
                  "+ backward, standard backprop) of `cinn train`'s JAX step (flow + "
                  "conditioning network) and of the bare flow's step at the app's shapes "
                  "(conditioning features fed as inputs). app / bare: the two GFLOP/s "
                  "in the same process, per round.", ""]
        lines += app_table(rows, peak)
    return "\n".join(lines) + "\n"


def plot(rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    bench = [r for r in rows if r.get("kind", "bench") == "bench"]
    archs = sorted({r["arch"] for r in bench})
    apps = [r for r in rows if r.get("kind") == "app"]
    ncols = len(archs) + (1 if apps else 0)
    if not ncols:
        return False
    fig, axes = plt.subplots(2, ncols, figsize=(4.5 * ncols, 7), squeeze=False)
    for col, arch in enumerate(archs):
        sel = [r for r in bench if r["arch"] == arch]
        series = sorted({(r["framework"], r["backend"], r.get("precision", "float32"))
                         for r in sel}, key=lambda s: (_lib_key(s), s[2]))
        batches = sorted({r["batch"] for r in sel})
        width = 0.8 / max(1, len(series))
        for row, (key, label) in enumerate((("train_steps_per_s", "training images/s"),
                                            ("sample_images_per_s", "sampling images/s"))):
            ax = axes[row][col]
            for i, s in enumerate(series):
                xs, ys, lo, hi = [], [], [], []
                for j, b in enumerate(batches):
                    vals = [r.get(key) * (b if key == "train_steps_per_s" else 1)
                            for r in sel if (r["framework"], r["backend"],
                                             r.get("precision", "float32")) == s
                            and r["batch"] == b and r.get(key)]
                    st = summarize(vals)
                    if st:
                        xs.append(j + (i - (len(series) - 1) / 2) * width)
                        ys.append(st["median"])
                        lo.append(st["median"] - st["min"])
                        hi.append(st["max"] - st["median"])
                name = "FrEIA" if s[0] == "freia" else f"cinn {s[1]}"
                if s[2] != "float32":
                    name += f" {s[2]}"
                ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=name)
            ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
            ax.set_title(f"{arch}: {label}")
            ax.set_ylabel(label)
            ax.legend(fontsize=8)
    if apps:
        ax = axes[0][-1]
        aflops = flops_by_app(rows)
        keys = sorted({(r["app"], r["backend"]) for r in apps},
                      key=lambda k: (APPS.index(k[0]) if k[0] in APPS else 9,
                                     _lib_key(("cinn", k[1]))))
        for i, (kind, label) in enumerate((("app", "cinn train step"), ("bare", "bare flow"))):
            ys, errs = [], [[], []]
            for app, be in keys:
                f = aflops.get(app, {})
                flo = f.get(f"{kind}_flops")
                vals = [r[f"{kind}_steps_per_s"] * flo / 1e9 for r in apps
                        if (r["app"], r["backend"]) == (app, be) and flo]
                st = summarize(vals) or {"median": 0, "min": 0, "max": 0}
                ys.append(st["median"])
                errs[0].append(st["median"] - st["min"])
                errs[1].append(st["max"] - st["median"])
            ax.bar([j + (i - 0.5) * 0.4 for j in range(len(keys))], ys, 0.4, yerr=errs,
                   capsize=3, label=label)
        ax.set_xticks(range(len(keys)), [f"{a}\n{b}" for a, b in keys], fontsize=7)
        peak = peak_of(rows)[0]
        if peak:
            ax.axhline(peak, color="grey", ls="--", lw=1, label=f"peak {peak:.0f}")
        ax.set_ylabel("GFLOP/s")
        ax.set_title("apps: full step vs bare flow")
        ax.legend(fontsize=8)
        axes[1][-1].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_results(rows, meta, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.jsonl", "w") as fh:
        fh.write(json.dumps({"meta": meta}) + "\n")
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def read_results(path):
    meta, rows = {}, []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            obj = json.loads(line)
            if "meta" in obj:
                meta = obj["meta"]
            else:
                rows.append(obj)
    return meta, rows


def write_report(rows, meta, out):
    out = Path(out)
    (out / "results.md").write_text(render_report(rows, meta))
    plot(rows, out / "throughput.png")


# -- driver ---------------------------------------------------------------------------
def synthetic_images(folder, n=40, size=128, seed=0):
    """``n`` smooth colour PNGs (for the app steps when the training folder is missing)."""
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        img = np.stack([np.sin(2 * np.pi * (rng.uniform(0.5, 3) * xx + rng.uniform(0.5, 3) * yy
                                            + rng.uniform())) for _ in range(3)], -1)
        img = 127.5 * (img + 1) + rng.normal(0, 8, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype("uint8")).save(folder / f"synth{i:03d}.png")
    return folder


def run_job(job, args, backend=None):
    """One measurement in a fresh process; its row, or None (failure printed)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if backend:
        env["KERAS_BACKEND"] = backend
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, "-m", "benchmarks.bench", "--one", json.dumps(job),
           "--steps", str(args.steps), "--device", args.device]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not line:
        err = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()] or ["?"]
        print("  failed: " + err[-1], flush=True)
        if args.verbose_failures:
            print("\n".join(err[-30:]), flush=True)
        return None
    return json.loads(line[-1][7:])


def _loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[8])
    p.add_argument("--frameworks", nargs="+", default=["cinn", "freia"],
                   choices=["cinn", "freia"])
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax"],
                   help="Keras backends to run cinn on")
    p.add_argument("--steps", type=int, default=20,
                   help="timed training steps per process (sampling: half as many passes, "
                        "at least 3; the app's bare flow: this many)")
    p.add_argument("--repeats", type=int, default=5,
                   help="rounds of the bare-flow measurements (each library once a round)")
    p.add_argument("--apps", nargs="*", default=list(APPS), choices=list(APPS),
                   help="apps whose full `cinn train` step to time (none: skip)")
    p.add_argument("--app-repeats", type=int, default=2,
                   help="rounds of the app-step measurements (each backend once a round)")
    p.add_argument("--app-epochs", type=int, default=2, help="epochs of each app run")
    p.add_argument("--app-steps", type=int, default=10, help="steps per epoch of each app run")
    p.add_argument("--app-warmup-epochs", type=int, default=1,
                   help="first epochs of an app run left out (compilation)")
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help="training images for the app steps (default: %(default)s)")
    p.add_argument("--peak-libs", nargs="*", default=list(PEAK_LIBS), choices=list(PEAK_LIBS))
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--precision", nargs="+", default=["float32"],
                   choices=["float32", "mixed_bfloat16", "mixed_float16"],
                   help="subnet precision (cinn: Keras dtype policy of the subnets; "
                        "FrEIA: torch.autocast)")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite results.md and throughput.png from OUT/results.jsonl")
    p.add_argument("--verbose-failures", action="store_true")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement, JSON out
    args = p.parse_args(argv)
    if args.one:
        if args.one.startswith("{"):
            job = json.loads(args.one)
        else:  # the old form: framework,arch,batch,precision
            fw, arch, batch, precision = args.one.split(",")
            job = {"kind": "bench", "framework": fw, "arch": arch, "batch": int(batch),
                   "precision": precision}
        print("RESULT " + json.dumps(measure(job, args.steps, args.device)), flush=True)
        return 0
    out = Path(args.out)
    if args.report_only:
        meta, rows = read_results(out / "results.jsonl")
        write_report(rows, meta, out)
        print((out / "results.md").read_text())
        return 0
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"),
            "command": "python -m benchmarks.bench " + shlex.join(
                sys.argv[1:] if argv is None else argv),
            "loadavg_start": _loadavg(), **versions(),
            "settings": (f"{args.repeats} rounds x {args.steps} timed steps after "
                         f"{WARMUP_STEPS} warm-up, batch {' '.join(map(str, args.batch_sizes))}"
                         f"; apps: {args.app_repeats} rounds x {args.app_epochs} epochs x "
                         f"{args.app_steps} steps, first {args.app_warmup_epochs} "
                         f"epoch(s) left out")}
    rows = []
    tmp = tempfile.TemporaryDirectory(prefix="cinn-bench-")
    data = Path(args.data)
    if args.apps and not data.is_dir():
        print(f"{data}: missing; writing synthetic images for the app steps", flush=True)
        data = synthetic_images(Path(tmp.name) / "images")
        meta["synthetic_data"] = True
    meta["data"] = str(data)

    def save():
        write_results(rows, meta, out)

    def add(row, **extra):
        if row is not None:
            row.update(extra)
            rows.append(row)
            save()
        return row

    def peaks(phase):
        for lib in args.peak_libs:
            if args.device == "gpu" and lib != "torch":
                continue
            r = add(run_job({"kind": "peak", "lib": lib}, args), phase=phase)
            if r:
                print(f"peak ({phase}) {lib}: {r['gflops']:.1f} GFLOP/s", flush=True)

    def say_flops(r, what):
        keys = [k for k in FLOP_KEYS if r.get(k)]
        if keys:
            print(f"  FLOPs {what}: " + ", ".join(f"{k[:-6]} {r[k] / 1e9:.4g} G"
                                                  for k in keys), flush=True)

    # a kill (SIGTERM) still writes the report of what was measured
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        peaks("start")
        cinn_backends = args.backends if "cinn" in args.frameworks else []
        libs = [("freia", "torch")] * ("freia" in args.frameworks) + [
            ("cinn", be) for be in cinn_backends]
        for arch in args.arch:
            for b in args.batch_sizes:
                if "freia" not in args.frameworks:  # the twin's FLOPs in a process of its own
                    say_flops(add(run_job({"kind": "flops", "arch": arch, "batch": b}, args,
                                          "jax" if "jax" in cinn_backends else None)) or {},
                              f"{arch} batch {b}")
                for p_i, prec in enumerate(args.precision):
                    for rnd in range(args.repeats):
                        for fw, be in libs:
                            print(f"[round {rnd + 1}/{args.repeats}] {fw} ({be}) {arch} batch "
                                  f"{b} {prec} ...", flush=True)
                            job = {"kind": "bench", "framework": fw, "arch": arch,
                                   "batch": b, "precision": prec,
                                   "count_flops": rnd == 0 and p_i == 0}
                            r = add(run_job(job, args, be if fw == "cinn" else None),
                                    round=rnd)
                            if r:
                                print(f"  train {r['train_steps_per_s']:.3g} step/s (CPU "
                                      f"{1000 * r['train_cpu_s']:.1f} ms/step), sample "
                                      f"{r['sample_images_per_s']:.4g} img/s", flush=True)
                                say_flops(r, f"{arch} batch {b}")
        if args.apps and "cinn" in args.frameworks and args.device == "cpu":
            for app in args.apps:
                if "jax" not in cinn_backends:  # FLOPs are counted on JAX
                    say_flops(add(run_job({"kind": "appflops", "app": app, "data": str(data)},
                                          args, "jax")) or {}, app)
                for rnd in range(args.app_repeats):
                    for be in cinn_backends:
                        print(f"[round {rnd + 1}/{args.app_repeats}] cinn train {app} ({be}) "
                              "...", flush=True)
                        job = {"kind": "app", "app": app, "data": str(data),
                               "epochs": args.app_epochs, "steps": args.app_steps,
                               "warmup_epochs": args.app_warmup_epochs,
                               "count_flops": rnd == 0 and be == "jax"}
                        r = add(run_job(job, args, be), round=rnd)
                        if r:
                            print(f"  app {r['app_steps_per_s']:.3g} step/s (sustained "
                                  f"{r['app_sustained_steps_per_s']:.3g}), bare flow "
                                  f"{r['bare_steps_per_s']:.3g} step/s", flush=True)
                            say_flops(r, app)
        peaks("end")
    finally:
        meta["loadavg_end"] = _loadavg()
        meta["minutes"] = round((time.time() - started) / 60, 1)
        meta["peak_gflops"] = peak_of(rows)[0]
        save()
        tmp.cleanup()
        write_report(rows, meta, out)
    print((out / "results.md").read_text())
    print(f"({meta['minutes']} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
