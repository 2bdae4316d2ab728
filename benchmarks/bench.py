"""Training and sampling speed and peak memory: cinn (Keras 3, this backend) vs FrEIA (PyTorch).

    python -m benchmarks.bench --arch colorization superres --batch-sizes 4 8 16 \
        --frameworks cinn freia --out benchmarks/results

Each (framework, architecture, batch size) runs in its own process so that peak
memory (RSS on CPU; device memory on a GPU) is its own. The architecture is the
app's flow, read from ``configs/<app>.yaml`` (levels, subnets, clamp); the
conditioning network is left out on both sides and its per-level features are
fed as inputs, so the figures compare the flow libraries on identical work.
Results: ``results.jsonl``, ``results.md`` (tables) and ``throughput.png``.
"""
import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHS = {
    # app -> shape of one condition at the benchmark size
    "colorization": (64, 64, 1),   # L of a 64x64 crop
    "superres": (40, 40, 3),       # LR of a 160x160 HR patch at 4x
}


def arch_spec(arch):
    """The app's flow (levels, shapes, clamp) as built from ``configs/<app>.yaml``,
    and the shapes of the per-level condition features at the benchmark size."""
    import importlib

    import numpy as np
    from keras import ops

    from apps.common.config import load_config

    task = importlib.import_module(f"apps.{arch}.task")
    model = task.build_model(load_config(arch)["model"])
    c = np.zeros((1,) + ARCHS[arch], "float32")
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


# -- one measurement per process ----------------------------------------------------
def peak_memory_mb(framework, device):
    if device == "gpu":
        if framework == "freia":
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use", 0) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def with_precision(levels, precision):
    """The levels with their coupling / injector / prior subnets in ``precision``
    (a Keras dtype policy; the flow arithmetic stays float32)."""
    if precision == "float32":
        return levels
    return [{**lv, "subnet": {**(lv.get("subnet") or {}), "dtype": precision}} for lv in levels]


def run_cinn(spec, batch, steps, seed=0, precision="float32"):
    import keras
    import numpy as np
    from keras import ops

    from cinn import ConditionalINN
    from cinn.compile import compiled

    keras.utils.set_random_seed(seed)
    res = level_resolutions(spec["levels"], spec["x_shape"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + spec["x_shape"]).astype("float32")
    feats = [None if c is None else rng.standard_normal((batch, h, w, c)).astype("float32")
             for (h, w), c in zip(res, spec["cond_channels"])]

    class FlowOnly(ConditionalINN):
        """Takes the per-level condition features directly (no conditioning net)."""

        def _check(self, x, c):
            pass

        def condition_features(self, c):
            return list(c)

        def _dummy_inputs(self):
            return ops.zeros((1,) + spec["x_shape"]), [
                None if f is None else ops.zeros((1,) + f.shape[1:]) for f in feats]

    model = FlowOnly(spec["x_shape"], (1,), with_precision(spec["levels"], precision),
                     clamp=spec["clamp"], seed=seed)
    model.initialize(x, feats)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    data = (x, feats)
    for _ in range(3):
        model.train_on_batch(data)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(data)
    float(np.asarray(loss).ravel()[0])
    train = steps / (time.perf_counter() - t0)
    z = rng.standard_normal((batch, int(np.prod(spec["x_shape"])))).astype("float32")
    decode = compiled(model, "decode")
    np.asarray(ops.convert_to_numpy(decode(z, feats)))
    t0 = time.perf_counter()
    n = max(3, steps // 2)
    for _ in range(n):
        out = decode(z, feats)
    np.asarray(ops.convert_to_numpy(out))
    sample = n * batch / (time.perf_counter() - t0)
    return train, sample, model.count_params()


def run_freia(spec, batch, steps, device, seed=0, precision="float32"):
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
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    # FrEIA's way to mixed precision: PyTorch autocast around the forward pass
    autocast = (torch.autocast(dev.type, dtype=getattr(torch, precision.split("_")[1]))
                if precision != "float32" else contextlib.nullcontext())

    def step():
        with autocast:
            z, log_det = net(x, c=feats)
        z = z if isinstance(z, (list, tuple)) else [z]
        nll = sum(0.5 * (zi ** 2).flatten(1).sum(1) for zi in z) - log_det
        loss = nll.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    float(loss)
    sync()
    train = steps / (time.perf_counter() - t0)
    with torch.no_grad():
        z = net(x, c=feats)[0]
        z = [torch.randn_like(zi) for zi in (z if isinstance(z, (list, tuple)) else [z])]
        with autocast:
            net(z, c=feats, rev=True)
        sync()
        t0 = time.perf_counter()
        n = max(3, steps // 2)
        for _ in range(n):
            with autocast:
                net(z, c=feats, rev=True)
        sync()
    sample = n * batch / (time.perf_counter() - t0)
    return train, sample, sum(p.numel() for p in net.parameters())


def measure(framework, arch, batch, steps, device, precision="float32"):
    spec = arch_spec(arch)
    if framework == "cinn":
        train, sample, params = run_cinn(spec, batch, steps, precision=precision)
        import keras

        backend = keras.backend.backend()
    else:
        train, sample, params = run_freia(spec, batch, steps, device, precision=precision)
        backend = "torch"
    return {"framework": framework, "backend": backend, "arch": arch, "batch": batch,
            "device": device, "precision": precision, "train_steps_per_s": round(train, 3),
            "sample_images_per_s": round(sample, 3), "peak_mem_mb": round(
                peak_memory_mb(framework, device), 1), "params": int(params)}


# -- driver --------------------------------------------------------------------------
def versions():
    out = {"python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count()}
    for mod in ("keras", "tensorflow", "jax", "torch", "FrEIA"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - not installed / no version
            pass
    return out


def write_report(rows, out):
    lines = ["| arch | batch | device | precision | cinn backend | cinn train step/s | "
             "FrEIA train step/s | ratio | cinn sample img/s | FrEIA sample img/s | ratio | cinn peak MB | "
             "FrEIA peak MB |", "|" + " --- |" * 13]
    keyed = {}
    for r in rows:
        keyed.setdefault((r["arch"], r["batch"], r["device"], r.get("precision", "float32")),
                         {}).setdefault(
            r["framework"], []).append(r)
    for (arch, batch, device, precision), fw in sorted(keyed.items()):
        f = (fw.get("freia") or [None])[0]
        for c in fw.get("cinn", []):
            def ratio(key):
                return f"{c[key] / f[key]:.2f}" if f and f[key] else "-"
            lines.append(
                f"| {arch} | {batch} | {device} | {precision} | {c['backend']} | "
                f"{c['train_steps_per_s']} | "
                f"{f['train_steps_per_s'] if f else '-'} | {ratio('train_steps_per_s')} | "
                f"{c['sample_images_per_s']} | {f['sample_images_per_s'] if f else '-'} | "
                f"{ratio('sample_images_per_s')} | {c['peak_mem_mb']} | "
                f"{f['peak_mem_mb'] if f else '-'} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len({r["arch"] for r in rows}), figsize=(11, 4), squeeze=False)
    for ax, arch in zip(axes[0], sorted({r["arch"] for r in rows})):
        def series(r):
            return (r["framework"], r["backend"], r["device"], r.get("precision", "float32"))

        for key in sorted({series(r) for r in rows if r["arch"] == arch}):
            pts = sorted((r["batch"], r["train_steps_per_s"] * r["batch"]) for r in rows
                         if series(r) == key and r["arch"] == arch)
            ax.plot(*zip(*pts), marker="o", label=" / ".join(key))
        ax.set_title(f"{arch}: training throughput")
        ax.set_xlabel("batch size")
        ax.set_ylabel("images / s")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=100)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[4, 8, 16])
    p.add_argument("--frameworks", nargs="+", default=["cinn", "freia"],
                   choices=["cinn", "freia"])
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax"],
                   help="Keras backends to run cinn on")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--precision", nargs="+", default=["float32"],
                   choices=["float32", "mixed_bfloat16", "mixed_float16"],
                   help="subnet precision (cinn: Keras dtype policy of the subnets; "
                        "FrEIA: torch.autocast)")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement, JSON out
    args = p.parse_args(argv)
    if args.one:
        fw, arch, batch, precision = args.one.split(",")
        print("RESULT " + json.dumps(measure(fw, arch, int(batch), args.steps, args.device,
                                             precision)))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    jobs = [(fw, be, arch, b, prec) for arch in args.arch for b in args.batch_sizes
            for prec in args.precision for fw in args.frameworks
            for be in (args.backends if fw == "cinn" else ["torch"])]
    for i, (fw, be, arch, batch, prec) in enumerate(jobs, 1):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        if fw == "cinn":
            env["KERAS_BACKEND"] = be
        if args.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        cmd = [sys.executable, "-m", "benchmarks.bench", "--one", f"{fw},{arch},{batch},{prec}",
               "--steps", str(args.steps), "--device", args.device]
        print(f"[{i}/{len(jobs)}] {fw} ({be}) {arch} batch {batch} {prec} ...", flush=True)
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print("  failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1], flush=True)
            continue
        row = json.loads(line[0][7:])
        rows.append(row)
        print(f"  train {row['train_steps_per_s']} step/s, sample "
              f"{row['sample_images_per_s']} img/s, peak {row['peak_mem_mb']} MB", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv), **versions()}
    with open(out / "results.jsonl", "w") as fh:
        fh.write(json.dumps({"meta": meta}) + "\n")
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    write_report(rows, out)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
