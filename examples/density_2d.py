"""2-D densities: affine coupling vs rational-quadratic spline coupling vs masked
autoregressive flow (MAF) on two moons, checkerboard, eight Gaussians and concentric
rings, each a ``ConditionalINN`` on vectors (``coupling`` of its level).

    python examples/density_2d.py -o docs/images          # the figures and the tables
    python examples/density_2d.py --speed                  # spline vs affine step time

Writes ``density_2d.png`` (per data set: a histogram of the data and each flow's
density), ``density_2d_layers.png`` (checkerboard test NLL against the number of
layers, affine vs spline) and ``density_2d.json`` (the test NLLs), and prints the
tables. ``--smoke``: tiny settings, seconds.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import cinn  # before Keras: cinn sets the backend's CPU flags

DATASETS = ("moons", "checkerboard", "8gaussians", "rings")
FLOWS = {"affine": "channel", "spline": "spline", "maf": "maf"}  # name -> level coupling
BOX = 4.0  # densities are drawn on [-BOX, BOX]^2
#: NLL of the checkerboard's own density: uniform on 8 squares of side 1.8
CHECKERBOARD_ENTROPY = float(np.log(8 * 1.8 ** 2))


def sample(name, n, rng):
    """``n`` points (float32) of a toy density, roughly within [-4, 4]^2."""
    if name == "moons":
        t = rng.uniform(0, np.pi, n)
        upper = rng.random(n) < 0.5
        x = np.where(upper[:, None], np.stack([np.cos(t), np.sin(t)], 1),
                     np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
        x = (x - [0.5, 0.25]) * 2.0 + 0.1 * rng.standard_normal((n, 2))
    elif name == "checkerboard":  # FFJORD's: 8 squares of a 4x4 board
        x1 = rng.random(n) * 4 - 2
        x2 = rng.random(n) - rng.integers(0, 2, n) * 2.0
        x2 = x2 + np.floor(x1) % 2
        x = np.stack([x1, x2], 1) * 1.8
    elif name == "8gaussians":
        a = rng.integers(0, 8, n) * (np.pi / 4)
        x = 2.8 * np.stack([np.cos(a), np.sin(a)], 1) + 0.25 * rng.standard_normal((n, 2))
    elif name == "rings":
        r = rng.integers(1, 5, n) * 0.85
        a = rng.uniform(0, 2 * np.pi, n)
        x = r[:, None] * np.stack([np.cos(a), np.sin(a)], 1) + 0.08 * rng.standard_normal((n, 2))
    else:
        raise ValueError(f"unknown data set {name!r}; known: {DATASETS}")
    return x.astype(np.float32)


def build(flow, layers, hidden, seed=0):
    return cinn.ConditionalINN((2,), None, levels=[{
        "blocks": int(layers), "coupling": FLOWS[flow], "permute": None, "actnorm": True,
        "subnet": {"type": "dense", "hidden": int(hidden), "depth": 2}}], seed=seed,
        name=f"{flow}_{layers}")


def fit(flow, data, layers, hidden, steps, batch=256, lr=2e-3, seed=0, n_train=50_000):
    """Train one flow; returns the model, the test NLL (nats, 20 000 fresh points)
    and the training seconds."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    n = min(n_train, steps * batch)
    x = sample(data, n, rng)
    model = build(flow, layers, hidden, seed)
    model.initialize(x[:2048])
    epochs = max(1, round(steps * batch / n))
    sched = keras.optimizers.schedules.CosineDecay(lr, epochs * -(-n // batch), alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(sched, global_clipnorm=5.0))
    t0 = time.perf_counter()
    model.fit(x, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    seconds = time.perf_counter() - t0
    test = sample(data, 20_000, np.random.default_rng(seed + 1000))
    nll = -float(np.mean(log_prob(model, test)))
    return model, nll, seconds


def log_prob(model, x, batch=4096):
    from cinn.compile import compiled

    enc = compiled(model, "encode")
    out = []
    for i in range(0, len(x), batch):
        z, ld = enc(x[i:i + batch])
        z, ld = np.asarray(z, np.float64), np.asarray(ld, np.float64)
        out.append(-0.5 * np.sum(z ** 2, 1) - np.log(2 * np.pi) + ld)
    return np.concatenate(out)


# -- pictures (NumPy + OpenCV) ---------------------------------------------------
_MAP = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                 [245, 125, 21], [250, 193, 39], [252, 255, 164]], np.float64)  # inferno


def colour(v):
    """Values in [0, 1] -> RGB uint8 (an inferno-like map)."""
    v = np.clip(v, 0, 1) * (len(_MAP) - 1)
    i = np.minimum(v.astype(int), len(_MAP) - 2)
    f = (v - i)[..., None]
    return (_MAP[i] * (1 - f) + _MAP[i + 1] * f).astype(np.uint8)


def grid_points(res):
    g = (np.arange(res) + 0.5) / res * 2 * BOX - BOX
    xx, yy = np.meshgrid(g, -g)  # image rows run downwards: y from +BOX to -BOX
    return np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)


def density_panel(p, res):
    return colour((p / max(p.max(), 1e-30)).reshape(res, res))


def histogram_panel(x, res):
    h, _, _ = np.histogram2d(-x[:, 1], x[:, 0], bins=res, range=[[-BOX, BOX], [-BOX, BOX]])
    return colour(h / max(h.max(), 1))


def put(img, text, xy, scale=0.45, colour_=(0, 0, 0)):
    import cv2

    cv2.putText(img, text, xy, cv2.FONT_HERSHEY_SIMPLEX, scale, colour_, 1, cv2.LINE_AA)


def figure(panels, row_names, col_names, res, nll=None):
    """Rows of panels with titles above the columns and names left of the rows."""
    gap, left, top = 4, 110, 24
    rows, cols = len(panels), len(panels[0])
    img = np.full((top + rows * (res + gap), left + cols * (res + gap), 3), 255, np.uint8)
    for j, name in enumerate(col_names):
        put(img, name, (left + j * (res + gap) + 6, 16))
    for i, row in enumerate(panels):
        y = top + i * (res + gap)
        put(img, row_names[i], (6, y + res // 2))
        for j, p in enumerate(row):
            x = left + j * (res + gap)
            img[y:y + res, x:x + res] = p
            if nll is not None and nll[i][j] is not None:
                put(img, f"NLL {nll[i][j]:.2f}", (x + 4, y + res - 6), 0.4, (255, 255, 255))
    return img


def line_chart(series, xs, xlabel, ylabel, title, size=(520, 360), logx=True, hlines=()):
    """A small line chart: ``series`` {name: ys} over ``xs`` (a log2 x axis with
    ``logx``; ``xs`` may also be {name: xs}); ``hlines``: (y, label) reference lines."""
    import cv2

    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = 62, 30, w - 20, h - 50
    xs_of = {k: list(xs[k]) if isinstance(xs, dict) else list(xs) for k in series}
    tx = (lambda v: np.log2(v)) if logx else (lambda v: float(v))
    all_x = [tx(v) for k in series for v in xs_of[k]]
    ys_all = [v for ys in series.values() for v in ys] + [y for y, _ in hlines]
    lo, hi = min(ys_all), max(ys_all)
    pad = 0.08 * (hi - lo + 1e-9)
    lo, hi = lo - pad, hi + pad
    xlo, xhi = min(all_x), max(all_x)
    fx = lambda v: int(x0 + (tx(v) - xlo) / max(xhi - xlo, 1e-9) * (x1 - x0))
    fy = lambda v: int(y1 - (v - lo) / (hi - lo) * (y1 - y0))
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
    if logx:
        ticks = sorted({v for k in series for v in xs_of[k]})
    else:
        ticks = [xlo + (xhi - xlo) * k / 4 for k in range(5)]
    for v in ticks:
        put(img, f"{v:g}" if logx else f"{v:.2g}", (fx(v) - 8, y1 + 16), 0.4)
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        put(img, f"{v:.2f}", (8, fy(v) + 4), 0.38)
    put(img, xlabel, ((x0 + x1) // 2 - 50, h - 12), 0.45)
    put(img, ylabel, (8, 18), 0.45)
    put(img, title, (x0 + 110, 18), 0.45)
    for y, label in hlines:
        cv2.line(img, (x0, fy(y)), (x1, fy(y)), (150, 150, 150), 1, cv2.LINE_AA)
        put(img, label, (x0 + 6, fy(y) - 4), 0.38, (110, 110, 110))
    palette = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    for k, (name, ys) in enumerate(series.items()):
        col = palette[k % len(palette)]
        pts = [(fx(a), fy(b)) for a, b in zip(xs_of[name], ys)]
        for p, q in zip(pts, pts[1:]):
            cv2.line(img, p, q, col, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 3, col, -1, cv2.LINE_AA)
        put(img, name, (x1 - 150, y0 + 20 + 18 * k), 0.45, col)
    return img


def save_png(path, rgb):
    import cv2

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[..., ::-1])


# -- speed -------------------------------------------------------------------
def step_speed(pairs=10, steps=20, hidden=64):
    """Seconds per training step of spline vs affine coupling at the same size
    (same subnets, blocks and batch), timed in interleaved pairs; returns
    ``{shape: {"affine": s, "spline": s, "ratio": median spline/affine}}``."""
    import keras

    res = {}
    setups = {
        "vectors (2-D, 8 blocks, dense 64x2, batch 256)": (
            (2,), [{"blocks": 8, "permute": None,
                    "subnet": {"type": "dense", "hidden": hidden}}], (256, 2)),
        "images (14x14x4, 8 blocks, conv 64, batch 64)": (
            (14, 14, 4), [{"blocks": 8, "permute": "conv1x1",
                           "subnet": {"type": "conv", "hidden": hidden}}], (64, 14, 14, 4)),
    }
    for label, (xs, levels, bshape) in setups.items():
        models = {}
        x = np.random.default_rng(0).standard_normal(bshape).astype(np.float32) * 0.5
        for name, coupling in (("affine", "channel"), ("spline", "spline")):
            lv = [{**lv, "coupling": coupling} for lv in levels]
            m = cinn.ConditionalINN(xs, None, levels=lv, seed=0)
            m.initialize(x)
            m.compile(optimizer=keras.optimizers.Adam(1e-4))
            m.fit(x, batch_size=bshape[0], epochs=1, steps_per_epoch=1, verbose=0)  # compile
            xr = np.repeat(x[None], steps, 0).reshape((-1,) + bshape[1:])
            models[name] = (m, xr)
        times = {"affine": [], "spline": []}
        for _ in range(pairs):
            for name in ("affine", "spline"):
                m, xr = models[name]
                t0 = time.perf_counter()
                m.fit(xr, batch_size=bshape[0], epochs=1, verbose=0, shuffle=False)
                times[name].append((time.perf_counter() - t0) / steps)
        ratio = float(np.median(np.asarray(times["spline"]) / np.asarray(times["affine"])))
        res[label] = {"affine_ms": 1e3 * float(np.median(times["affine"])),
                      "spline_ms": 1e3 * float(np.median(times["spline"])), "ratio": ratio}
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", default="out", help="folder of the pictures and JSON")
    p.add_argument("--layers", type=int, default=8, help="blocks of each flow")
    p.add_argument("--sweep", default="2,4,8,16", help="layer counts of the checkerboard sweep")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--steps", type=int, default=4000, help="training steps per flow")
    p.add_argument("--res", type=int, default=160, help="pixels per density panel")
    p.add_argument("--data", default=",".join(DATASETS), help="data sets, comma-separated")
    p.add_argument("--speed", action="store_true", help="only time spline vs affine steps")
    p.add_argument("--smoke", action="store_true", help="tiny settings (seconds)")
    p.error = lambda msg: (print(f"cinn: error: {msg}", file=sys.stderr), sys.exit(2))
    args = p.parse_args(argv)
    try:
        sweep = [int(v) for v in args.sweep.split(",") if v]
    except ValueError:
        print(f"cinn: error: --sweep must be integers separated by commas, got {args.sweep!r}",
              file=sys.stderr)
        return 2
    if args.speed:
        pairs, steps = (2, 3) if args.smoke else (10, 20)
        for label, r in step_speed(pairs, steps).items():
            print(f"{label}: affine {r['affine_ms']:.1f} ms, spline {r['spline_ms']:.1f} ms "
                  f"per step, spline/affine {r['ratio']:.2f}")
        return 0
    datasets = [d for d in args.data.split(",") if d]
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown or not datasets:
        print(f"cinn: error: unknown data set(s) {unknown}; known: {', '.join(DATASETS)}",
              file=sys.stderr)
        return 2
    if args.smoke:
        args.layers, sweep, args.steps, args.res, args.hidden = 2, [1], 10, 48, 8
    out = Path(args.out)
    res = args.res
    grid = grid_points(res)
    panels, nlls, table = [], [], {}
    for data in datasets:
        x = sample(data, 200_000, np.random.default_rng(7))
        row, row_nll = [histogram_panel(x, res)], [None]
        table[data] = {}
        for flow in FLOWS:
            model, nll, sec = fit(flow, data, args.layers, args.hidden, args.steps)
            table[data][flow] = {"nll": nll, "seconds": sec}
            print(f"{data:12s} {flow:7s} {args.layers} layers: test NLL {nll:.3f} nats "
                  f"({sec:.0f} s)", flush=True)
            row.append(density_panel(np.exp(log_prob(model, grid)), res))
            row_nll.append(nll)
        panels.append(row)
        nlls.append(row_nll)
    names = ["data"] + [f"{f} ({args.layers})" for f in FLOWS]
    save_png(out / "density_2d.png", figure(panels, datasets, names, res, nlls))
    sweep_res = {}
    for flow in ("affine", "spline"):
        sweep_res[flow] = []
        for n in sweep:
            _, nll, sec = fit(flow, "checkerboard", n, args.hidden, args.steps)
            sweep_res[flow].append(nll)
            print(f"checkerboard {flow:7s} {n:2d} layers: test NLL {nll:.3f} nats ({sec:.0f} s)",
                  flush=True)
    save_png(out / "density_2d_layers.png",
             line_chart(sweep_res, sweep, "coupling layers", "test NLL (nats)",
                        "checkerboard", hlines=[(CHECKERBOARD_ENTROPY, "true density")]))
    (out / "density_2d.json").write_text(json.dumps(
        {"layers": args.layers, "hidden": args.hidden, "steps": args.steps, "nll": table,
         "checkerboard_sweep": {"layers": sweep, **sweep_res}}, indent=1))
    print("| data | " + " | ".join(FLOWS) + " |")
    for data in datasets:
        print(f"| {data} | " + " | ".join(f"{table[data][f]['nll']:.3f}" for f in FLOWS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
