"""``cinn evaluate colorization --data DIR``: the cINN against the grey baseline
(ab = 0), the same flow trained without the condition, and the deterministic L2
regressor on the same conditioning network (Ardizzone et al. 2019's baseline).

Per image (colour images of the folder, cropped to a multiple of the network's
size, or centre crops of ``--size``): held-out bits/dim of ab (1 Lab unit bins,
uniform dequantisation), best-of-N PSNR and SSIM in RGB, the mean PSNR and SSIM
of single samples (the average over the N samples: what one draw gives), the mean
per-pixel std of ab across the N samples (diversity, Lab units) and the
Hasler-Suesstrunk colourfulness of the samples next to the ground truth's. The
baselines are read from ``saved_models/colorization/`` (``colorization_uncond.keras``,
``colorization_l2.keras``) when they exist; the regressor's one prediction counts as
its best-of-N and single sample alike. Samples are drawn as ``cinn colorize`` draws
them: the flow at ``--temperature``, then each sample's global colour draw
(``--saturation``, ``--hue``; ``cinn.apps.colorization.global_colour``), the unconditional
flow's too. Bits/dim are the flow's, ``p(ab | L)``, before any global draw.
"""
import numpy as np
from keras import ops

from cinn.apps.colorization.defaults import DEFAULT_HUE, DEFAULT_SATURATION, DEFAULT_TEMPERATURE
from cinn.apps.colorization.color import merge_lab, split_lab, to_uint8
from cinn.apps.colorization.data import load_colour_images
from cinn.apps.colorization.global_colour import from_arguments, is_identity
from cinn.apps.colorization.infer import _compiled, sample_ab
from cinn.apps.common.data import center_crops
from cinn.apps.common.pretrained import default_weights, load_model
from cinn.apps.common.progress import progress
from cinn.apps.common.sampling_args import curve_temperatures
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


def score(model, rgb, n, temperature, seed, saturation=DEFAULT_SATURATION, hue=DEFAULT_HUE):
    """Metrics of one model on one image (a dict); samples as ``infer.sample_ab``
    draws them (``saturation``, ``hue``: their global colour draws)."""
    c, x = (np.asarray(ops.convert_to_numpy(t), "float32") for t in split_lab(rgb))
    ab = sample_ab(model, c, n, temperature, seed, compiled=True, saturation=saturation,
                   hue=hue)
    samples = to_uint8(merge_lab(np.broadcast_to(c, (n,) + c.shape), ab))
    psnrs, ssims = [psnr(s, rgb) for s in samples], [ssim(s, rgb) for s in samples]
    return {
        "bpd": bits_per_dim(model, x[None], c[None], seed),
        "psnr": max(psnrs), "ssim": max(ssims),
        "diversity": float(np.mean(np.std(ab * 100.0, axis=0))) if n > 1 else 0.0,
        "colourfulness": float(np.mean([colourfulness(s) for s in samples])),
        "psnr_single": float(np.mean(psnrs)), "ssim_single": float(np.mean(ssims)),
    }


def score_regressor(model, rgb):
    """Metrics of the deterministic L2 regressor on one image (a dict)."""
    c, _ = split_lab(rgb)
    c = np.asarray(ops.convert_to_numpy(c), "float32")
    predict = _compiled(model, "predict_ab") or model.predict_ab
    ab = np.asarray(ops.convert_to_numpy(predict(c[None])), "float32")[0]
    pred = to_uint8(merge_lab(c, ab))
    p, q = psnr(pred, rgb), ssim(pred, rgb)
    return {"bpd": float("nan"), "psnr": p, "ssim": q, "diversity": 0.0,
            "colourfulness": colourfulness(pred), "psnr_single": p, "ssim_single": q}


def score_grey(rgb):
    c, _ = split_lab(rgb)
    c = np.asarray(ops.convert_to_numpy(c), "float32")
    grey = to_uint8(merge_lab(c, np.zeros(c.shape[:-1] + (2,), "float32")))
    p, q = psnr(grey, rgb), ssim(grey, rgb)
    return {"bpd": float("nan"), "psnr": p, "ssim": q, "diversity": 0.0,
            "colourfulness": colourfulness(grey), "psnr_single": p, "ssim_single": q}


NAMES = {"cinn": "cINN (L -> ab)", "uncond": "same flow, no condition",
         "l2": "L2 regressor (same conditioning net)", "grey": "grey (ab = 0)"}


def evaluate_images(model, images, n=8, temperature=DEFAULT_TEMPERATURE, seed=0, uncond=None,
                    regressor=None, show_progress=False, saturation=DEFAULT_SATURATION,
                    hue=DEFAULT_HUE):
    """Per-method lists of per-image metric dicts (keys of ``NAMES``; a baseline
    whose model is ``None`` is left out). The unconditional flow's samples get the
    same global colour draws as the cINN's."""
    rows = {"cinn": [], "uncond": [], "l2": [], "grey": []}
    for rgb in progress(images, f"images, T = {temperature:g}") if show_progress else images:
        rows["cinn"].append(score(model, rgb, n, temperature, seed, saturation, hue))
        if uncond is not None:
            rows["uncond"].append(score(uncond, rgb, n, temperature, seed, saturation, hue))
        if regressor is not None:
            rows["l2"].append(score_regressor(regressor, rgb))
        rows["grey"].append(score_grey(rgb))
    return {k: v for k, v in rows.items() if v}


def mean_metrics(rows):
    """Every metric of ``rows`` (per-image dicts of one method) averaged over the images."""
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def format_table(rows, gt_colour, missing=()):
    """The Markdown table of ``evaluate_images``'s rows; ``missing``: (name, path) of
    baselines without weights (a row saying so)."""
    lines = ["| method | bits/dim (ab) | best-of-N PSNR | best-of-N SSIM | diversity (ab std) "
             f"| colourfulness (GT {gt_colour:.1f}) | single-sample PSNR | single-sample SSIM |",
             "|" + " --- |" * 8]
    missing = dict(missing)
    for key, name in NAMES.items():
        if key in missing:
            lines.append(f"| {name} | (no weights at {missing[key]}) | | | | | | |")
            continue
        if key not in rows:
            continue
        m = mean_metrics(rows[key])
        bpd = "—" if np.isnan(m["bpd"]) else f"{m['bpd']:.3f}"
        lines.append(f"| {name} | {bpd} | {m['psnr']:.2f} dB | {m['ssim']:.4f} | "
                     f"{m['diversity']:.2f} | {m['colourfulness']:.1f} | "
                     f"{m['psnr_single']:.2f} dB | {m['ssim_single']:.4f} |")
    return "\n".join(lines)


def run(args):
    n = int(args.num_samples)
    if n < 1:
        raise CinnError(f"-n must be at least 1, got {n}")
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else float(args.temperature)
    temperatures = curve_temperatures(args)
    saturation, hue = from_arguments(args)
    model = load_model("colorization", args.weights)
    baselines, missing = {}, []
    for key in ("uncond", "l2"):
        path = default_weights("colorization", key)
        if path.exists():
            baselines[key] = load_model("colorization", path)
        else:
            missing.append((key, path))
    images = load_colour_images(args.data, limit=args.limit)
    if args.size:
        images = list(center_crops(images, int(args.size)))
    images = [crop_to_multiple(img, model.multiple) for img in images
              if min(img.shape[:2]) >= model.multiple]
    if not images:
        raise CinnError(f"{args.data}: no colour image of at least {model.multiple}x"
                        f"{model.multiple} pixels")
    rows = evaluate_images(model, images, n, temperature, args.seed,
                           uncond=baselines.get("uncond"), regressor=baselines.get("l2"),
                           show_progress=True, saturation=saturation, hue=hue)
    gt_colour = float(np.mean([colourfulness(rgb) for rgb in images]))
    size = f"{args.size}x{args.size} centre crops" if args.size else "full images"
    print(f"colorization on {args.data}: {len(images)} colour images ({size}), "
          f"N = {n} samples at temperature {temperature:g}, seed {args.seed}, "
          f"{_colour_words(saturation, hue)}")
    print(f"ground-truth colourfulness: {gt_colour:.1f}")
    print(format_table(rows, gt_colour, missing))
    if temperatures:
        curve = [(t, evaluate_images(model, images, n, t, args.seed, show_progress=True,
                                     saturation=saturation, hue=hue)["cinn"])
                 for t in temperatures]
        print(f"\n# the cINN at each temperature (N = {n}, seed {args.seed})")
        print(format_curve(curve, gt_colour))
    return 0


def _colour_words(saturation, hue):
    if is_identity(saturation, hue):
        return "no global colour draws"
    lo, hi = saturation or (1.0, 1.0)
    return f"global colour draws: saturation {lo:g}-{hi:g}, hue +-{hue or 0:g} degrees"


def format_curve(curve, gt_colour):
    """The Markdown table of the cINN's rows at several temperatures: ``curve`` is
    ``[(T, per-image metric dicts), ...]``; colourfulness also as % of the ground truth's."""
    lines = ["| T | best-of-N PSNR | best-of-N SSIM | diversity (ab std) | colourfulness "
             f"(% of GT {gt_colour:.1f}) | single-sample PSNR | single-sample SSIM |",
             "|" + " --- |" * 7]
    for t, rows in curve:
        m = mean_metrics(rows)
        lines.append(f"| {float(t):g} | {m['psnr']:.2f} dB | {m['ssim']:.4f} | "
                     f"{m['diversity']:.2f} | {m['colourfulness']:.1f} "
                     f"({100 * m['colourfulness'] / gt_colour:.0f}%) | "
                     f"{m['psnr_single']:.2f} dB | {m['ssim_single']:.4f} |")
    return "\n".join(lines)
