"""Image density on MNIST / Fashion-MNIST: Glow and RealNVP configurations, trained by
maximum likelihood, reported in test bits/dim as the literature counts them
(``cinn.density``: uniform dequantisation, [0, 256) pixel space, per dimension).

    python examples/mnist_density.py --model glow --data mnist --out runs/mnist_glow
    python examples/mnist_density.py --out runs/mnist_glow --evaluate
    python examples/mnist_density.py --model glow --conditional --out runs/mnist_cglow
    python examples/mnist_density.py --weights examples/weights/mnist_glow.keras \
        --out runs/mnist_glow_shipped --figures docs/images

Training resumes from its run folder (``checkpoints/``, ``config.json``): run the same
command again after a kill. ``--init FILE.keras`` starts a new run from a model file's
weights (fresh optimizer), e.g. the shipped ones; ``--export FILE.keras`` writes the
run's model without the optimizer state (a third of the size), as
``examples/weights/`` is made; ``--weights FILE.keras`` evaluates a model file (and
draws its pictures) without a run.

Every epoch appends the test bits/dim and the training
time so far to ``OUT/history.csv``. ``--conditional``: class-conditional flow (the
one-hot label broadcast to every level), bits/dim given the label. ``--smoke``: a
tiny model on 512 images for a few steps (seconds).
"""
import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

import cinn  # before Keras: cinn sets the backend's CPU flags
from cinn.errors import CinnError

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "density"
HISTORY_FIELDS = ["epoch", "step", "train_seconds", "train_bpd", "test_bpd"]
CONFIG_KEYS = ("model", "data", "levels", "steps", "hidden", "batch", "lr", "clipnorm",
               "epochs", "conditional", "seed", "smoke")


class UsageError(Exception):
    pass


def load(data, root=DATA):
    path = Path(root) / f"{data}.npz"
    if not path.is_file():
        raise UsageError(f"{path}: no such data file")
    d = np.load(path)
    return d["x_train"], d["y_train"], d["x_test"], d["y_test"]


def read_history(out):
    path = Path(out) / "history.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _clock(out):
    path = Path(out) / "clock.json"
    return json.loads(path.read_text())["train_seconds"] if path.is_file() else 0.0


def _append_row(out, row):
    path = Path(out) / "history.csv"
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)


def _logged_loss(out, epoch):
    """The training loss of ``epoch`` (1-based) in ``history.json``, else NaN."""
    path = Path(out) / "history.json"
    try:
        log = json.loads(path.read_text())
        return float(log["history"]["loss"][log["epochs"].index(epoch)])
    except (OSError, ValueError, KeyError, IndexError):
        return float("nan")


def make_callback(out, x_test, y_test, conditional, eval_n, steps_per_epoch):
    """Keras callback: training seconds (cumulative over resumed runs, in
    ``clock.json``) and, at every epoch end, test bits/dim into ``history.csv``. A
    run killed after an epoch's checkpoint but before its row was written gets the
    row when it resumes from that checkpoint (the weights and the clock are those of
    the epoch's end)."""
    import keras

    from cinn.density import test_bits_per_dim

    def row_of(model, epoch, seconds, loss):
        bpd = test_bits_per_dim(model, x_test[:eval_n], y_test[:eval_n] if conditional else None)
        step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        return {"epoch": epoch, "step": step, "train_seconds": round(seconds, 1),
                "train_bpd": round(float(loss), 5), "test_bpd": round(float(np.mean(bpd)), 5)}

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = _clock(out)
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            done = read_history(out)
            last = int(done[-1]["epoch"]) if done else 0
            if step and step % steps_per_epoch == 0 and step // steps_per_epoch == last + 1:
                row = row_of(self.model, last + 1, self.seconds, _logged_loss(out, last + 1))
                _append_row(out, row)
                print(f"[mnist_density] epoch {row['epoch']} (its row was missing): test "
                      f"{row['test_bpd']:.4f} bits/dim", flush=True)
            self.t0 = time.perf_counter()

        def _tick(self):
            now = time.perf_counter()
            self.seconds += now - self.t0
            self.t0 = now
            (Path(out) / "clock.json").write_text(json.dumps({"train_seconds": self.seconds}))

        def on_train_batch_end(self, batch, logs=None):
            if batch % 50 == 0:
                self._tick()

        def on_epoch_end(self, epoch, logs=None):
            self._tick()
            row = row_of(self.model, epoch + 1, self.seconds, (logs or {}).get("loss", np.nan))
            _append_row(out, row)
            print(f"[mnist_density] epoch {row['epoch']}: test {row['test_bpd']:.4f} bits/dim"
                  f" after {row['train_seconds'] / 3600:.2f} h of training", flush=True)
            self.t0 = time.perf_counter()  # evaluation time is not training time

    return Record()


def config_from_args(args, out):
    """The run's configuration: ``config.json`` of the run folder if there is one (a
    resumed run keeps its own), else the arguments, written there."""
    path = out / "config.json"
    given = {k: getattr(args, k) for k in CONFIG_KEYS}
    if path.is_file():
        cfg = json.loads(path.read_text())
        cfg.setdefault("clipnorm", None)
        if args.evaluate:
            return cfg
        changed = {k: given[k] for k in ("epochs", "lr", "clipnorm")
                   if given[k] is not None and given[k] != cfg[k]}
        if changed:  # a run may be extended, or resumed gentler after a runaway
            from cinn.callbacks import Checkpoints

            step = Checkpoints(out / "checkpoints").latest_step() or 0
            cfg.setdefault("changes", []).append({"from_step": step, **changed})
            cfg.update(changed)
            path.write_text(json.dumps(cfg, indent=1))
        return cfg
    if args.evaluate:
        raise UsageError(f"{out}: no config.json (train there first)")
    if given["epochs"] is None:
        given["epochs"] = 2 if args.smoke else 30
    if given["lr"] is None:
        given["lr"] = 1e-3
    if args.init:
        given["init"] = str(args.init)      # a warm start, recorded
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(given, indent=1))
    return given


def build(cfg):
    from cinn.density import image_flow

    return image_flow(cfg["model"], (28, 28, 1), cfg["levels"], cfg["steps"], cfg["hidden"],
                      num_classes=10 if cfg["conditional"] else None, seed=cfg["seed"])


def load_trained(out):
    """The model of a run folder: ``model.keras`` (written at every epoch end), else
    the newest checkpoint."""
    import keras

    from cinn.callbacks import Checkpoints

    cfg = json.loads((out / "config.json").read_text())
    if (out / "model.keras").is_file():
        return cfg, cinn.load_model(out / "model.keras")
    model = build(cfg)
    model.compile(optimizer=keras.optimizers.Adam(cfg["lr"]))
    if Checkpoints(out / "checkpoints").restore(model) is None:
        raise UsageError(f"{out}: no checkpoint or model.keras (train there first)")
    return cfg, model


def model_file(path, args):
    """The model in ``path`` and a configuration for it: its flow from the file, the
    data and the smoke setting from the arguments."""
    try:
        model = cinn.load_model(path)
    except Exception as err:  # noqa: BLE001 - any load failure becomes one line
        msg = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"{path}: not a cinn model file ({msg[:160]})") from None
    if tuple(getattr(model, "x_shape", ())) != (28, 28, 1):
        raise UsageError(f"{path}: holds no flow of 28x28x1 images (MNIST)")
    cfg = {k: getattr(args, k) for k in CONFIG_KEYS}
    cfg["conditional"] = getattr(model, "cond_shape", None) is not None
    return cfg, model


def export(model, path):
    """``model`` as a ``.keras`` file without optimizer state (weights and architecture)."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:   # reload uncompiled: no optimizer in the file
        model.save(Path(tmp) / "model.keras")
        cinn.load_model(Path(tmp) / "model.keras").save(path)
    return path


def train(cfg, out, x_train, y_train, x_test, y_test, init=None):
    import keras

    from cinn.density import one_hot, pixel_centres
    from cinn.training import train as fit

    keras.utils.set_random_seed(cfg["seed"])
    model = build(cfg)
    x = pixel_centres(x_train)
    c = one_hot(y_train) if cfg["conditional"] else None
    eval_n = 256 if cfg["smoke"] else len(x_test)
    # ActNorm from the first 256 images, not from one batch of 64 as train() would
    model.initialize(x[:256], None if c is None else c[:256])
    rec = make_callback(out, x_test, y_test, cfg["conditional"], eval_n,
                        -(-len(x) // cfg["batch"]))
    fit(model, (x, c), epochs=cfg["epochs"], learning_rate=cfg["lr"], batch_size=cfg["batch"],
        global_clipnorm=cfg.get("clipnorm"), out_dir=out, checkpoint_every=200,
        callbacks=[rec], verbose=2, tensorboard=False, seed=cfg["seed"], lr_schedule="cosine",
        min_lr_ratio=0.1, init=init)
    return model


def evaluate(model, cfg, x_test, y_test, seeds=(0,)):
    from cinn.density import test_bits_per_dim

    res = []
    for s in seeds:
        bpd = test_bits_per_dim(model, x_test, y_test if cfg["conditional"] else None, seed=s)
        res.append(float(np.mean(bpd)))
    return res


# -- figures -----------------------------------------------------------------
#: the ten corruptions of the NICE paper's MAP-inpainting figure: name -> hidden mask
CORRUPTIONS = ("top rows", "bottom rows", "odd pixels", "even pixels", "left side",
               "right side", "middle vertically", "middle horizontally", "75% random",
               "90% random")


def hidden_mask(name, size=28, rng=None):
    """Boolean (size, size): True where ``name`` hides a pixel. Halves for the sides
    and rows, the middle half of the columns ("middle vertically") or rows ("middle
    horizontally"), every other pixel in raster order for odd/even pixels."""
    r, c = np.mgrid[:size, :size]
    half, q = size // 2, size // 4
    raster = r * size + c
    masks = {"top rows": r < half, "bottom rows": r >= half,
             "odd pixels": raster % 2 == 1, "even pixels": raster % 2 == 0,
             "left side": c < half, "right side": c >= half,
             "middle vertically": (c >= q) & (c < size - q),
             "middle horizontally": (r >= q) & (r < size - q)}
    if name in masks:
        return masks[name]
    frac = {"75% random": 0.75, "90% random": 0.9}[name]
    rng = rng or np.random.default_rng(0)
    return rng.random((size, size)) < frac


def tile(images, rows, cols, scale=2, gap=2, bg=255):
    """(rows * cols, H, W[, 1]) in [0, 1] -> one grey uint8 picture, nearest-upscaled."""
    import cv2

    ims = np.clip(np.asarray(images, np.float32).reshape(rows * cols, *np.shape(images)[1:3]),
                  0, 1)
    h, w = ims.shape[1] * scale, ims.shape[2] * scale
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), bg, np.uint8)
    for k, im in enumerate(ims):
        i, j = divmod(k, cols)
        big = cv2.resize((im * 255).round().astype(np.uint8), (w, h),
                         interpolation=cv2.INTER_NEAREST)
        out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = big
    return out


def _rgb(grey):
    return np.repeat(grey[..., None], 3, axis=2)


def _titled(img, title, left=0):
    pad = np.full((22, img.shape[1], 3), 255, np.uint8)
    from density_2d import put

    put(pad, title, (left + 4, 15))
    return np.concatenate([pad, img], axis=0)


def class_samples(model, out_png, temperatures=(0.7, 1.0), n=10, seed=0):
    """Per class (rows 0-9) ``n`` samples at each temperature, side by side."""
    from cinn.density import one_hot
    from density_2d import save_png

    c = one_hot(np.arange(10))
    panels = []
    for t in temperatures:
        s = np.asarray(model.sample(c, n=n, temperature=t, seed=seed))
        panels.append(_titled(_rgb(tile(s.reshape(-1, 28, 28), 10, n)), f"temperature {t}"))
    gap = np.full((panels[0].shape[0], 12, 3), 255, np.uint8)
    save_png(out_png, np.concatenate([panels[0], gap, *panels[1:]], axis=1))


def style_transfer(model, x_test, y_test, out_png, count=8):
    """Encode test digits with their label, decode each ``z`` with labels 0-9."""
    from cinn.density import one_hot, pixel_centres
    from density_2d import save_png

    idx = [int(np.flatnonzero(y_test == d)[0]) for d in range(count)]
    x = pixel_centres(x_test[idx])
    z, _ = model.encode(x, one_hot(y_test[idx]))
    z = np.asarray(z)
    rows = []
    for k in range(count):
        zz = np.repeat(z[k:k + 1], 10, axis=0)
        dec = np.asarray(model.decode(zz, one_hot(np.arange(10))))
        rows.append(np.concatenate([x[k:k + 1], np.ones_like(x[:1]), dec], 0))
    img = _rgb(tile(np.concatenate(rows).reshape(-1, 28, 28), count, 12))
    save_png(out_png, _titled(img, "input  |  decoded with label 0 1 2 ... 9"))


def eight_bit(x):
    """Images in [0, 1] as 8-bit images: each value at the centre of its pixel's bin
    ``floor(256 x)`` (the bins of ``cinn.density``'s dequantisation), as a picture is
    saved. Every score of the inpainting compares these with the 8-bit truth: a
    continuous sample against the truth's bin centre would also count where the sample
    lies within the bin, which is dequantisation noise, not the flow's uncertainty."""
    return ((np.floor(np.clip(x, 0.0, 1.0 - 1e-7) * 256) + 0.5) / 256).astype(np.float32)


def map_inpainting(model, x_test, x_train, out_png, n=20, steps=300, lr=0.01, post_png=None,
                   samples=4, post_steps=400, sigma=0.1, post_start="modes"):
    """The ten corruptions on ``n`` test digits: MAP by gradient ascent (init: the
    mean training image), PSNR over the hidden pixels against the mean-image fill;
    with ``post_png`` also ``samples`` posterior samples per digit
    (``inpaint_posterior``: latent MALA, ``post_steps`` steps, tolerance ``sigma`` on
    the observed pixels; ``post_start``: each chain from its own MAP completion, started
    from the hidden pixels of a random training digit, ``"modes"``, or every chain from
    the one MAP completion, ``"map"``), scored by PSNR (one sample, the samples' mean)
    and CRPS against the MAP's and the mean fill's MAE, all on the 8-bit images."""
    from cinn.density import pixel_centres
    from cinn.diagnostics import bootstrap_ci, crps, range_coverage
    from cinn.map_inpainting import inpaint_map, inpaint_posterior, psnr_hidden
    from density_2d import save_png

    x = pixel_centres(x_test[:n])
    train = pixel_centres(x_train)
    mean = train.mean(axis=0)
    rng = np.random.default_rng(0)
    masks = np.stack([~hidden_mask(name, 28, rng) for name in CORRUPTIONS])[..., None]
    xs = np.repeat(x[None], len(CORRUPTIONS), 0).reshape(-1, 28, 28, 1)
    obs = np.repeat(masks[:, None], n, 1).reshape(-1, 28, 28, 1)
    init = np.broadcast_to(mean, xs.shape)
    fill = eight_bit(np.where(obs, xs, init))
    t0 = time.perf_counter()
    out, trace = inpaint_map(model, xs, obs, steps=steps, lr=lr, init=init, history=True)
    out_c, out = out, eight_bit(out)
    sec = time.perf_counter() - t0
    shape = (len(CORRUPTIONS), n)
    p_fill = psnr_hidden(xs, fill, obs).reshape(shape)
    p_map = psnr_hidden(xs, out, obs).reshape(shape)
    table = {name: {"mean_fill_psnr": float(p_fill[i].mean()), "map_psnr": float(p_map[i].mean())}
             for i, name in enumerate(CORRUPTIONS)}
    info = {"log_p_start": trace[0], "log_p_end": trace[-1], "seconds": sec, "steps": steps,
            "lr": lr, "digits": n}
    if post_png is not None:
        t0 = time.perf_counter()

        def report(step, total, accept):
            if step % 50 == 0 or step == total:
                print(f"[mnist_density] posterior inpainting: MALA step {step}/{total} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)

        if post_start == "map":
            start = out_c
        else:   # over-dispersed: chain k of a digit from the local mode reached from the
            # hidden pixels of another (random) training digit
            pick = np.random.default_rng(1).choice(len(train), (len(xs), samples))
            start = inpaint_map(model, np.repeat(xs, samples, 0), np.repeat(obs, samples, 0),
                                steps=steps, lr=lr, init=train[pick].reshape((-1,) + xs.shape[1:]))
            start = start.reshape((len(xs), samples) + xs.shape[1:])
            print(f"[mnist_density] posterior inpainting: {len(xs) * samples} chain starts "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        post, hist = inpaint_posterior(model, xs, obs, n=samples, steps=post_steps, sigma=sigma,
                                       init=start, history=True, progress=report)
        post = eight_bit(post)
        hidden = ~obs[..., 0]

        def per_image(f):
            return np.array([f(i) for i in range(len(xs))]).reshape(shape)

        grey = 255.0   # CRPS and MAE in grey levels, as the apps report them
        crps_post = per_image(lambda i: grey * crps(post[i][:, hidden[i]],
                                                    xs[i][hidden[i]]).mean())
        mae_map = per_image(lambda i: grey * np.abs(out[i] - xs[i])[hidden[i]].mean())
        mae_fill = per_image(lambda i: grey * np.abs(fill[i] - xs[i])[hidden[i]].mean())
        p_one = np.mean([psnr_hidden(xs, post[:, k], obs) for k in range(samples)],
                        axis=0).reshape(shape)
        p_mean = psnr_hidden(xs, post.mean(axis=1), obs).reshape(shape)
        # the 4-sample range covers a calibrated posterior's truth (N-1)/(N+1) = 0.6 of
        # the time (ties between 8-bit pixels and samples broken at random)
        cover = per_image(lambda i: range_coverage(post[i][:, hidden[i]], xs[i][hidden[i]]))
        for i, name in enumerate(CORRUPTIONS):
            # the paired ratio, resampling the same digits for both
            ratio = bootstrap_ci(np.stack([crps_post[i], mae_map[i]], 1),
                                 stat=lambda v: v[:, 0].mean() / v[:, 1].mean())
            table[name].update(sample_psnr=float(p_one[i].mean()),
                               samples_mean_psnr=float(p_mean[i].mean()),
                               crps=float(crps_post[i].mean()), map_mae=float(mae_map[i].mean()),
                               mean_fill_mae=float(mae_fill[i].mean()),
                               range_coverage=float(cover[i].mean()),
                               # 95 % bootstrap intervals over the digits
                               crps_ci=bootstrap_ci(crps_post[i])[1:],
                               map_mae_ci=bootstrap_ci(mae_map[i])[1:],
                               range_coverage_ci=bootstrap_ci(cover[i])[1:],
                               crps_over_map_mae=ratio[0], crps_over_map_mae_ci=ratio[1:])
        info["posterior"] = {"samples": samples, "steps": post_steps, "sigma": sigma,
                             "start": post_start,
                             "accept": hist["accept"], "seconds": time.perf_counter() - t0}
        _posterior_figure(xs, obs, out, post, n, post_png)
    # figure: per corruption one row of 3 digits, each original | corrupted | MAP
    show = 3
    rows = []
    for i in range(len(CORRUPTIONS)):
        k = slice(i * n, i * n + show)
        corrupted = np.where(obs[k], xs[k], 0.5)
        trip = np.stack([xs[k], corrupted, out[k]], 1).reshape(-1, 28, 28)
        rows.append(trip)
    strips = [tile(np.concatenate(rows).reshape(len(CORRUPTIONS), show, 3, 28, 28)[:, j]
                   .reshape(-1, 28, 28), len(CORRUPTIONS), 3) for j in range(show)]
    img, lab, left = _strips_with_labels(
        strips, [f"{p_fill[i].mean():.1f} -> {p_map[i].mean():.1f} dB"
                 for i in range(len(CORRUPTIONS))])
    pic = _titled(np.concatenate([lab, img], 1), "original | corrupted | MAP  (x3 digits)",
                  left)
    save_png(out_png, pic)
    return table, info


def _strips_with_labels(strips, notes=None, left=150):
    """Strips side by side (10 px apart) with a label column naming the corruptions
    (and, with ``notes``, a grey second line for each)."""
    from density_2d import put

    sep = np.full((strips[0].shape[0], 10), 255, np.uint8)
    parts = [strips[0]]
    for strip in strips[1:]:
        parts += [sep, strip]
    img = _rgb(np.concatenate(parts, 1))
    lab = np.full((img.shape[0], left, 3), 255, np.uint8)
    step = img.shape[0] / len(CORRUPTIONS)
    for i, name in enumerate(CORRUPTIONS):
        put(lab, f"{name}", (4, int((i + 0.5) * step) + 2), 0.42)
        if notes is not None:
            put(lab, notes[i], (4, int((i + 0.5) * step) + 18), 0.38, (90, 90, 90))
    return img, lab, left


def _posterior_figure(xs, obs, map_out, post, n, out_png, show=2):
    """Per corruption ``show`` digits, each original | corrupted | MAP | samples."""
    from density_2d import save_png

    samples = post.shape[1]
    cols = 3 + samples
    strips = []
    for j in range(show):
        cells = []
        for i in range(len(CORRUPTIONS)):
            k = i * n + j
            cells += [xs[k], np.where(obs[k], xs[k], 0.5), map_out[k], *post[k]]
        strips.append(tile(np.stack(cells).reshape(-1, 28, 28), len(CORRUPTIONS), cols))
    img, lab, left = _strips_with_labels(strips)
    save_png(out_png, _titled(np.concatenate([lab, img], 1),
                              f"original | corrupted | MAP | {samples} posterior samples", left))


def sibling_runs(out, cfg):
    """{label: folder} of the unconditional runs on ``cfg``'s data beside ``out``
    (its parent's folders with a ``config.json``), ``out`` included."""
    runs = {}
    for folder in sorted({Path(out), *Path(out).parent.iterdir()}):
        path = folder / "config.json"
        if not path.is_file():
            continue
        other = json.loads(path.read_text())
        if other.get("data") == cfg["data"] and not other.get("conditional"):
            runs[f"{other['model']} ({folder.name})"] = folder
    return runs


def bpd_curve(runs, out_png, title="MNIST"):
    """Test bits/dim against training hours of the run folders ``runs`` {label: dir}."""
    from density_2d import line_chart, save_png

    series, xs = {}, {}
    for label, folder in runs.items():
        hist = read_history(folder)
        if hist:
            series[label] = [h["test_bpd"] for h in hist]
            xs[label] = [h["train_seconds"] / 3600 for h in hist]
    if not series:
        raise UsageError("no history.csv in the run folders")
    save_png(out_png, line_chart(series, xs, "training hours (2-core CPU)", "test bits/dim",
                                 title, size=(620, 380), logx=False,
                                 hlines=[(1.05, "Glow (published) 1.05"),
                                         (1.10, "goal 1.10")]))


def figures(model, cfg, out, fig_dir, x_train, x_test, y_test, smoke=False, digits=20,
            curve=True, post_start="modes"):
    """The pictures of a trained run into ``fig_dir``; a JSON of its figures in ``out``
    (``curve``: also the bits/dim curve of the run and its siblings)."""
    fig_dir = Path(fig_dir)
    if cfg["conditional"]:
        class_samples(model, fig_dir / "mnist_cond_samples.png")
        style_transfer(model, x_test, y_test, fig_dir / "mnist_style_transfer.png")
        print(f"wrote {fig_dir / 'mnist_cond_samples.png'} and "
              f"{fig_dir / 'mnist_style_transfer.png'}")
        return
    n, steps, post_steps = (4, 5, 6) if smoke else (digits, 300, 400)
    table, info = map_inpainting(model, x_test, x_train, fig_dir / "mnist_map_inpainting.png",
                                 n=n, steps=steps, post_steps=post_steps,
                                 post_png=fig_dir / "mnist_posterior_inpainting.png",
                                 post_start=post_start)
    (out / "map_inpainting.json").write_text(json.dumps({"psnr": table, **info}, indent=1))
    post = info["posterior"]
    print(f"MAP inpainting, {n} test digits, {steps} Adam steps (lr {info['lr']}); "
          f"mean log p {info['log_p_start']:.1f} -> {info['log_p_end']:.1f} nats "
          f"({info['seconds']:.0f} s); {post['samples']} posterior samples per digit, "
          f"{post['steps']} MALA steps from "
          f"{'the MAP' if post['start'] == 'map' else 'their own MAP completions'}, "
          f"sigma {post['sigma']} "
          f"(acceptance {post['accept']:.2f}, {post['seconds']:.0f} s)")
    print("| corruption | mean-image fill PSNR (dB) | MAP PSNR (dB) | one sample PSNR (dB) "
          "| mean of the samples PSNR (dB) | CRPS of the samples | MAE of MAP | CRPS / MAE "
          "of MAP | MAE of the mean fill | range coverage (calibrated "
          f"{(post['samples'] - 1) / (post['samples'] + 1):.2f}) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    from cinn.apps.common.posterior_report import cell

    def ci(r, key, fmt):
        return cell((r[key], *r[f"{key}_ci"]), fmt)

    for name, r in table.items():
        print(f"| {name} | {r['mean_fill_psnr']:.2f} | {r['map_psnr']:.2f} | "
              f"{r['sample_psnr']:.2f} | {r['samples_mean_psnr']:.2f} | "
              f"{ci(r, 'crps', '{:.1f}')} | {ci(r, 'map_mae', '{:.1f}')} | "
              f"{ci(r, 'crps_over_map_mae', '{:.2f}')} | {r['mean_fill_mae']:.1f} | "
              f"{ci(r, 'range_coverage', '{:.2f}')} |")
    print("(mean over the digits [95 % bootstrap interval over the digits])")
    if curve:
        bpd_curve(sibling_runs(out, cfg), fig_dir / f"{cfg['data']}_bpd_curve.png",
                  cfg["data"].replace("_", "-").replace("mnist", "MNIST")
                  .replace("fashion", "Fashion"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["glow", "realnvp"], default="glow")
    p.add_argument("--data", choices=["mnist", "fashion_mnist"], default="mnist")
    p.add_argument("--out", required=True, help="run folder (resumed if it exists)")
    p.add_argument("--levels", type=int, default=2)
    p.add_argument("--steps", type=int, default=8, help="flow steps per level")
    p.add_argument("--hidden", type=int, default=96, help="channels of the coupling subnets")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate of the cosine schedule (default 1e-3); given to a "
                   "run folder, it changes the schedule from its newest checkpoint on "
                   "(recorded in config.json under 'changes')")
    p.add_argument("--clipnorm", type=float, default=None,
                   help="clip the global gradient norm (default: off); on a run folder as --lr")
    p.add_argument("--epochs", type=int, default=None, help="default 30 (cosine schedule)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conditional", action="store_true", help="class-conditional flow")
    p.add_argument("--evaluate", action="store_true", help="only print the test bits/dim")
    p.add_argument("--eval-seeds", type=int, default=1, help="dequantisation draws averaged")
    p.add_argument("--figures", metavar="DIR", help="also write the run's pictures into DIR "
                   "(unconditional: MAP inpainting and the bits/dim curve; conditional: "
                   "class samples and style transfer)")
    p.add_argument("--inpaint-digits", type=int, default=20, metavar="N",
                   help="test digits of the MAP and posterior inpainting (with --figures)")
    p.add_argument("--posterior-start", choices=["modes", "map"], default="modes",
                   help="where the posterior inpainting's MALA chains start: each from its "
                   "own MAP completion, started from a random training digit's hidden "
                   "pixels (default), or all from the one MAP completion")
    p.add_argument("--smoke", action="store_true", help="tiny model, 512 images, seconds")
    p.add_argument("--init", metavar="FILE.keras", help="start a new run from this model "
                   "file's weights (same architecture; fresh optimizer and schedule)")
    p.add_argument("--export", metavar="FILE.keras", help="also write the trained model "
                   "without its optimizer state to FILE.keras")
    p.add_argument("--weights", metavar="FILE.keras", help="evaluate this model file (and with "
                   "--figures draw its pictures) instead of a run's; --out takes the results")
    p.add_argument("--data-root", default=str(DATA), help=argparse.SUPPRESS)
    p.error = lambda msg: (print(f"cinn: error: {msg}", file=sys.stderr), sys.exit(2))
    args = p.parse_args(argv)
    try:
        out = Path(args.out)
        if not 3 <= args.inpaint_digits <= 10000:
            raise UsageError(f"--inpaint-digits must be 3-10000, got {args.inpaint_digits}")
        if args.smoke:
            args.levels, args.steps, args.hidden, args.batch = 2, 1, 8, 32
        for flag in ("init", "weights"):
            if getattr(args, flag) and not Path(getattr(args, flag)).is_file():
                raise UsageError(f"--{flag} {getattr(args, flag)}: no such model file")
        if args.weights:
            cfg, model = model_file(args.weights, args)
            out.mkdir(parents=True, exist_ok=True)
        else:
            cfg = config_from_args(args, out)
        x_train, y_train, x_test, y_test = load(cfg["data"], args.data_root)
        if cfg["smoke"]:
            x_train, y_train, x_test, y_test = x_train[:512], y_train[:512], x_test[:256], y_test[:256]
        if not (args.evaluate or args.weights):
            train(cfg, out, x_train, y_train, x_test, y_test, init=args.init)
        if not args.weights:
            cfg, model = load_trained(out)
        bpd = evaluate(model, cfg, x_test, y_test, seeds=range(args.eval_seeds))
        given = " given the label" if cfg["conditional"] else ""
        hours = None if args.weights else _clock(out) / 3600
        source = f"{args.weights}" if args.weights else f"{hours:.2f} h of training"
        print(f"{cfg['model'] if not args.weights else 'flow'} {cfg['data']}: test "
              f"{np.mean(bpd):.4f} bits/dim{given} ({len(x_test)} images, {len(bpd)} "
              f"dequantisation draw(s); {source})")
        (out / "result.json").write_text(json.dumps(
            {"test_bpd": float(np.mean(bpd)), "draws": bpd, "train_hours": hours,
             "images": len(x_test)}, indent=1))
        if args.export:
            path = export(model, args.export)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, no optimizer state)")
        if args.figures:
            figures(model, cfg, out, args.figures, x_train, x_test, y_test, cfg["smoke"],
                    args.inpaint_digits, curve=not args.weights, post_start=args.posterior_start)
    except (UsageError, CinnError) as err:  # a runaway loss, a failed save, ...
        print(f"cinn: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
