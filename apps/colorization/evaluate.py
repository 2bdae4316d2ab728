"""``cinn evaluate colorization --data DIR``: the cINN against the grey baseline
(ab = 0) and against the same flow trained without the condition.

Per image (colour images of the folder, cropped to a multiple of the network's
size, or centre crops of ``--size``): held-out bits/dim of ab (1 Lab unit bins,
uniform dequantisation), best-of-N PSNR and SSIM in RGB, the mean per-pixel std
of ab across the N samples (diversity, Lab units) and the Hasler-Suesstrunk
colourfulness of the samples next to the ground truth's.
"""
import sys
import time

import numpy as np
from keras import ops

from apps.colorization.color import merge_lab, split_lab, to_uint8
from apps.colorization.data import load_colour_images
from apps.colorization.infer import _compiled, sample_ab
from apps.common.data import center_crops
from apps.common.pretrained import default_weights, load_model
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


def score(model, rgb, n, temperature, seed):
    """Metrics of one model on one image (a dict)."""
    c, x = (np.asarray(ops.convert_to_numpy(t), "float32") for t in split_lab(rgb))
    ab = sample_ab(model, c, n, temperature, seed, compiled=True)
    samples = to_uint8(merge_lab(np.broadcast_to(c, (n,) + c.shape), ab))
    return {
        "bpd": bits_per_dim(model, x[None], c[None], seed),
        "psnr": max(psnr(s, rgb) for s in samples),
        "ssim": max(ssim(s, rgb) for s in samples),
        "diversity": float(np.mean(np.std(ab * 100.0, axis=0))) if n > 1 else 0.0,
        "colourfulness": float(np.mean([colourfulness(s) for s in samples])),
    }


def score_grey(rgb):
    c, _ = split_lab(rgb)
    c = np.asarray(ops.convert_to_numpy(c), "float32")
    grey = to_uint8(merge_lab(c, np.zeros(c.shape[:-1] + (2,), "float32")))
    return {"bpd": float("nan"), "psnr": psnr(grey, rgb), "ssim": ssim(grey, rgb),
            "diversity": 0.0, "colourfulness": colourfulness(grey)}


def run(args):
    n = int(args.num_samples)
    if n < 1:
        raise CinnError(f"-n must be at least 1, got {n}")
    temperature = 1.0 if args.temperature is None else float(args.temperature)
    model = load_model("colorization", args.weights)
    uncond_path = default_weights("colorization", "uncond")
    uncond = load_model("colorization", uncond_path) if uncond_path.exists() else None
    images = load_colour_images(args.data, limit=args.limit)
    if args.size:
        images = list(center_crops(images, int(args.size)))
    images = [crop_to_multiple(img, model.multiple) for img in images
              if min(img.shape[:2]) >= model.multiple]
    if not images:
        raise CinnError(f"{args.data}: no colour image of at least {model.multiple}x"
                        f"{model.multiple} pixels")

    rows = {"cINN (L -> ab)": [], "same flow, no condition": [], "grey (ab = 0)": []}
    gt_colour = []
    start = time.time()
    for i, rgb in enumerate(images):
        gt_colour.append(colourfulness(rgb))
        rows["cINN (L -> ab)"].append(score(model, rgb, n, temperature, args.seed))
        if uncond is not None:
            rows["same flow, no condition"].append(score(uncond, rgb, n, temperature, args.seed))
        rows["grey (ab = 0)"].append(score_grey(rgb))
        print(f"\r[cinn] {i + 1}/{len(images)} images, {time.time() - start:.0f} s",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    size = f"{args.size}x{args.size} centre crops" if args.size else "full images"
    print(f"colorization on {args.data}: {len(images)} colour images ({size}), "
          f"N = {n} samples at temperature {temperature:g}, seed {args.seed}")
    print(f"ground-truth colourfulness: {np.mean(gt_colour):.1f}")
    head = ("| method | bits/dim (ab) | best-of-N PSNR | best-of-N SSIM | diversity (ab std) "
            "| colourfulness (GT %.1f) |" % np.mean(gt_colour))
    print(head)
    print("|" + " --- |" * 6)
    for name, scores in rows.items():
        if not scores:
            print(f"| {name} | (no weights at {uncond_path}) | | | | |")
            continue
        m = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        bpd = "—" if np.isnan(m["bpd"]) else f"{m['bpd']:.3f}"
        print(f"| {name} | {bpd} | {m['psnr']:.2f} dB | {m['ssim']:.4f} | "
              f"{m['diversity']:.2f} | {m['colourfulness']:.1f} |")
    return 0
