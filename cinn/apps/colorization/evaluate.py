"""``cinn evaluate colorization --data DIR``: the posterior report of the cINN against
the grey baseline (ab = 0) and the deterministic L2 regressor on the same conditioning
network (``saved_models/colorization/colorization_l2.keras``, Ardizzone et al. 2019's
baseline).

Per image (colour images of the folder, cropped to a multiple of the network's size,
or centre crops of ``--size``), in RGB 0-255 over the whole image: the
``PosteriorReport`` (``cinn.apps.common.posterior_report``) of the flow's ``-n``
samples at the default temperature and at T = 1 (CRPS, range coverage, calibration
error and coverage gap per pixel and channel; best-of-N, single-sample and mean PSNR
and SSIM), the regressor and grey as deterministic rows (CRPS = MAE), every figure with
its 95 % bootstrap interval over images; the calibration plots go to ``--out``;
``--temperatures`` sweeps the flow and names the calibrated temperature. Beside: the
flow's held-out bits/dim of ab (1 Lab unit bins, uniform dequantisation), the
Hasler-Suesstrunk colourfulness of every row next to the ground truth's, and the
diversity (per-pixel std of ab across the samples, Lab units).

The flow is sampled as ``cinn colorize`` samples it (``defaults.py``): a flow with
global latents at ``--temperature`` (default 1) for them and ``--local-temperature``
(default 0.5) for the others; a flow without global latents at one temperature. The
flow's samples are its own: the post-hoc global colour draws
(``cinn.apps.colorization.global_colour``) are off unless ``--saturation``/``--hue``
are given, and then the regressor gets them too (a "regressor + draws" row of ``-n``
recolourings of its prediction), so that the draws' share of any figure shows.
"""
from pathlib import Path

import numpy as np
from keras import ops

from cinn.apps.colorization.color import merge_lab, split_lab, to_uint8
from cinn.apps.colorization.data import load_colour_images
from cinn.apps.colorization.global_colour import (from_arguments, global_draws,
                                                  is_identity, recolour)
from cinn.apps.colorization.infer import _compiled, has_global, sample_ab, sampling_temperatures
from cinn.apps.common.data import center_crops
from cinn.apps.common.images import pad_to_multiple
from cinn.apps.common.outputs import check_out_dir
from cinn.apps.common.posterior_report import (PosteriorReport, flow_key, flow_temperatures,
                                               temperatures_label)
from cinn.apps.common.pretrained import default_weights, load_model
from cinn.apps.common.progress import progress
from cinn.apps.common.sampling_args import curve_temperatures
from cinn.diagnostics import bootstrap_ci
from cinn.errors import CinnError


def colourfulness(rgb):
    """Hasler & Suesstrunk (2003) colourfulness of a uint8 RGB image."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a, b):
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def bits_per_dim(model, x, c, seed=0):
    """Discrete bits/dim of scaled ab ``x`` (1, H, W, 2) given ``c``, with uniform
    dequantisation noise of one bin (fixed seed)."""
    rng = np.random.default_rng(seed)
    x = x + model.bin_width * rng.uniform(-0.5, 0.5, x.shape).astype("float32")
    encode = _compiled(model, "encode") or model.encode
    z, log_det = encode(x, c)
    return float(ops.convert_to_numpy(model.bits_per_dim(z, log_det))[0])


def crop_to_multiple(img, m):
    h, w = (img.shape[0] // m) * m, (img.shape[1] // m) * m
    if h == 0 or w == 0:
        raise CinnError(f"image of {img.shape[1]}x{img.shape[0]} is smaller than {m}x{m}")
    y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[y:y + h, x:x + w]


def quality(a, b):
    """PSNR and SSIM (RGB, 8-bit) of a colouring ``a`` against the truth ``b``."""
    return psnr(a, b), ssim(a, b)


def condition(rgb):
    """Scaled L (H, W, 1) and ab (H, W, 2) of a uint8 RGB image, float32 NumPy."""
    return tuple(np.asarray(ops.convert_to_numpy(t), "float32") for t in split_lab(rgb))


def with_draws(ab, seed, saturation, hue):
    """``ab`` (n, H, W, 2) with sample ``i`` scaled and rotated by draw ``i`` of
    ``global_colour.global_draws(n, seed, saturation, hue)`` (no draws: unchanged)."""
    if is_identity(saturation, hue):
        return ab
    scale, degrees = global_draws(len(ab), seed, saturation, hue)
    return np.asarray(ops.convert_to_numpy(recolour(ab, scale, degrees)), "float32")


def colourings(c, ab):
    """uint8 RGB images (n, H, W, 3) of L ``c`` (H, W, 1) and ab ``ab`` (n, H, W, 2)."""
    return to_uint8(merge_lab(np.broadcast_to(c, (len(ab),) + c.shape), ab))


def regressor_ab(model, c):
    """The L2 regressor's one ab prediction (1, H, W, 2) for L ``c`` (H, W, 1)."""
    padded, (h, w) = pad_to_multiple(c, model.multiple)
    predict = _compiled(model, "predict_ab") or model.predict_ab
    return np.asarray(ops.convert_to_numpy(predict(padded[None])), "float32")[:, :h, :w]


NAMES = {"l2": "L2 regressor (same conditioning net)",
         "l2_draws": "L2 regressor + global colour draws", "grey": "grey (ab = 0)"}
BASELINES = tuple(NAMES)


def evaluate_images(model, images, n=8, temperature=None, seed=0,
                    regressor=None, sweep=(), saturation=None, hue=0.0,
                    show_progress=False, local_temperature=None):
    """``(report, extras)`` over uint8 RGB images: the ``PosteriorReport`` (rows: the
    flow at ``temperature``, at T = 1 and at each temperature of ``sweep``, ``n``
    samples each (``None``: the default temperature; a flow with global latents
    samples its other latents at ``local_temperature`` in every row, default 0.5, and
    names it in the row); the regressor (one prediction; with global colour draws also
    ``n`` drawn recolourings of it); grey) in RGB 0-255 over the whole image, and
    ``extras``: per row key the mean colourfulness of its colourings and diversity
    (per-pixel std of ab across the samples, Lab units), ``gt_colourfulness`` and
    ``bpd`` (the flow's held-out bits/dim per image, before any global draw). The
    global colour draws (``saturation``, ``hue``; off by default) apply to the flow's
    samples and the regressor's draws row alike. Image ``i`` uses seed ``seed + i``."""
    temperature, local_temperature = sampling_temperatures(model, temperature,
                                                           local_temperature)
    local_words = f", local {local_temperature:g}" if has_global(model) else ""
    report = PosteriorReport(quality, seed=seed)
    draws = not is_identity(saturation, hue)
    colour, spread, bpd, gt = {}, {}, [], []

    def add(key, name, c, ab, rgb):
        samples = colourings(c, ab)
        report.add(key, name, samples, rgb)
        colour.setdefault(key, []).append(
            float(np.mean([colourfulness(x) for x in samples])))
        spread.setdefault(key, []).append(
            float(np.mean(np.std(ab * 100.0, axis=0))) if len(ab) > 1 else 0.0)

    for i, rgb in enumerate(progress(images, "images") if show_progress else images):
        c, x = condition(rgb)
        gt.append(colourfulness(rgb))
        bpd.append(bits_per_dim(model, x[None], c[None], seed + i))
        for t in flow_temperatures(temperature, sweep):
            ab = sample_ab(model, c, n, t, seed + i, compiled=True, saturation=saturation,
                           hue=hue, local_temperature=local_temperature if local_words else t)
            add(flow_key(t), f"cINN, N = {n}, T = {t:g}{local_words}"
                + (" + draws" if draws else ""), c, ab, rgb)
        if regressor is not None:
            ab = regressor_ab(regressor, c)
            add("l2", NAMES["l2"], c, ab, rgb)
            if draws:
                add("l2_draws", f"{NAMES['l2_draws']}, N = {n}", c,
                    with_draws(np.repeat(ab, n, axis=0), seed + i, saturation, hue), rgb)
        add("grey", NAMES["grey"], c, np.zeros_like(x)[None], rgb)
    extras = {"colourfulness": {k: float(np.mean(v)) for k, v in colour.items()},
              "diversity": {k: float(np.mean(v)) for k, v in spread.items()},
              "gt_colourfulness": float(np.mean(gt)),
              "bpd": bootstrap_ci(np.asarray(bpd), seed=seed)}
    return report, extras


def format_colour(report, extras, keys):
    """Colourfulness (and % of the ground truth's) and diversity of the rows ``keys``."""
    gt = extras["gt_colourfulness"]
    lines = [f"| method | colourfulness (ground truth {gt:.1f}) | diversity (ab std) |",
             "| --- | --- | --- |"]
    for k in keys:
        if k in report.methods:
            c = extras["colourfulness"][k]
            lines.append(f"| {report.methods[k].name} | {c:.1f} ({100 * c / gt:.0f} %) | "
                         f"{extras['diversity'][k]:.2f} |")
    return "\n".join(lines)


def colour_draws(args):
    """``(saturation, hue)`` of evaluate's ``--saturation``/``--hue``: off (``(None,
    0.0)``) unless given; one given alone leaves the other off
    (``global_colour.from_arguments``, as ``cinn colorize``)."""
    return from_arguments(args)


def run(args):
    """``cinn evaluate colorization``: prints the posterior report (Markdown), writes
    the calibration plots to ``--out``."""
    n = int(args.num_samples)
    if n < 1:
        raise CinnError(f"-n must be at least 1, got {n}")
    sweep = curve_temperatures(args)
    saturation, hue = colour_draws(args)
    out = check_out_dir(getattr(args, "out", None) or "out")
    model = load_model("colorization", args.weights)
    temperature, local_temperature = sampling_temperatures(
        model, args.temperature, getattr(args, "local_temperature", None))
    path = default_weights("colorization", "l2")
    regressor = load_model("colorization", path) if path.exists() else None
    images = load_colour_images(args.data, limit=args.limit)
    if args.size:
        images = list(center_crops(images, int(args.size)))
    images = [crop_to_multiple(img, model.multiple) for img in images
              if min(img.shape[:2]) >= model.multiple]
    if not images:
        raise CinnError(f"{args.data}: no colour image of at least {model.multiple}x"
                        f"{model.multiple} pixels")
    report, extras = evaluate_images(model, images, n, temperature, args.seed, regressor,
                                     sweep, saturation, hue, show_progress=True,
                                     local_temperature=local_temperature)
    size = f"{args.size}x{args.size} centre crops" if args.size else "full images"
    print(f"colorization on {args.data}: {len(images)} colour images ({size}), "
          f"N = {n} samples at temperature {temperatures_label(temperature)}"
          + (f" (local latents at {local_temperature:g})" if has_global(model) else "")
          + f", seed {args.seed} (+ image "
          f"index), {_colour_words(saturation, hue)}; CRPS and coverage per pixel and "
          "channel (RGB, 0-255 grey levels), PSNR/SSIM (RGB); mean over images [95 % "
          "bootstrap interval over images]")
    if regressor is None:
        print(f"(no L2 regressor at {path}: its rows are left out)")
    b = extras["bpd"]
    print(f"held-out bits/dim of ab (the flow, before any draw): {b[0]:.3f} "
          f"[{b[1]:.3f}, {b[2]:.3f}]\n")
    report.print("colorization", temperature, sweep, out, Path(args.data).name, BASELINES)
    temps = [temperature] + ([1.0] if temperature != 1.0 else [])
    print()
    print(format_colour(report, extras, [flow_key(t) for t in temps] + list(BASELINES)))
    return 0


def _colour_words(saturation, hue):
    if is_identity(saturation, hue):
        return "no global colour draws"
    lo, hi = saturation or (1.0, 1.0)
    return f"global colour draws: saturation {lo:g}-{hi:g}, hue +-{hue or 0:g} degrees"
