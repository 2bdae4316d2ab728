"""``cinn evaluate inpainting --data DIR``: the cINN against OpenCV's Telea inpainting.

One fixed mask per image (drawn from seed ``[--seed, image index]``: boxes and brush
strokes, 10-50 % of the image); PSNR and SSIM (RGB, 8-bit) over the hole pixels only,
best of N samples, the average single sample, the mean of the N samples and Telea;
diversity is the per-pixel std across the samples inside the hole.
"""
import time

import numpy as np

from cinn.apps.common.data import center_crops, load_folder
from cinn.apps.common.pretrained import load_model
from cinn.apps.common.progress import progress
from cinn.apps.common.regressor import Regressor
from cinn.apps.inpainting import DEFAULT_TEMPERATURE
from cinn.apps.inpainting.infer import inpaint
from cinn.apps.inpainting.masks import random_mask
from cinn.apps.inpainting.model import fill_hole, learned_fill
from cinn.errors import CinnError


def hole_psnr(a, b, mask):
    """PSNR (dB, 8-bit) between uint8 images over the pixels where ``mask`` is set."""
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = max(float(np.mean(diff ** 2)), 1e-10)
    return 10.0 * np.log10(255.0 ** 2 / mse)


def hole_ssim(a, b, mask):
    """Mean of the SSIM map (RGB, 7x7 windows) over the pixels where ``mask`` is set."""
    from skimage.metrics import structural_similarity  # scikit-image: only when scoring

    win = max(3, min(7, min(a.shape[:2]) - 1 + min(a.shape[:2]) % 2))  # odd, <= side
    _, smap = structural_similarity(a, b, channel_axis=2, data_range=255, full=True,
                                    win_size=win)
    return float(smap.mean(axis=2)[mask].mean())


telea = fill_hole  #: the classical baseline, OpenCV's Telea inpainting


def eval_masks(images, seed):
    """The fixed evaluation masks: mask ``i`` is drawn from ``default_rng([seed, i])``."""
    return [random_mask(img.shape[:2], np.random.default_rng([seed, i]))
            for i, img in enumerate(images)]


def evaluate_images(model, images, n=8, temperature=DEFAULT_TEMPERATURE, seed=0,
                    show_progress=False):
    """Metrics (dict of floats) over a list of uint8 RGB images with fixed masks."""
    rows = {k: [] for k in ("psnr_best", "psnr_single", "ssim_best", "ssim_single",
                            "psnr_mean", "ssim_mean", "diversity", "psnr_telea",
                            "ssim_telea", "coverage", "psnr_fill", "ssim_fill")}
    fill_net = getattr(model, "fill_net", None)
    pairs = list(zip(images, eval_masks(images, seed)))
    for i, (img, mask) in enumerate(progress(pairs, "images") if show_progress else pairs):
        samples = inpaint(model, img, mask, n=n, temperature=temperature, seed=seed + i)
        psnrs = [hole_psnr(s, img, mask) for s in samples]
        ssims = [hole_ssim(s, img, mask) for s in samples]
        rows["psnr_best"].append(max(psnrs))
        rows["ssim_best"].append(max(ssims))
        rows["psnr_single"].append(float(np.mean(psnrs)))
        rows["ssim_single"].append(float(np.mean(ssims)))
        mean = np.clip(np.rint(samples.astype(np.float64).mean(axis=0)), 0, 255).astype(np.uint8)
        rows["psnr_mean"].append(hole_psnr(mean, img, mask))
        rows["ssim_mean"].append(hole_ssim(mean, img, mask))
        rows["diversity"].append(float(samples.astype(np.float64).std(axis=0)[mask].mean()))
        base = telea(img, mask)
        rows["psnr_telea"].append(hole_psnr(base, img, mask))
        rows["ssim_telea"].append(hole_ssim(base, img, mask))
        rows["coverage"].append(float(mask.mean()))
        if fill_net is not None:
            fill = learned_fill(fill_net, img, mask)
            rows["psnr_fill"].append(hole_psnr(fill, img, mask))
            rows["ssim_fill"].append(hole_ssim(fill, img, mask))
    return {k: float(np.mean(v)) for k, v in rows.items() if v}


def format_table(r, n, temperature, name="cINN"):
    return "\n".join([
        "| method | hole PSNR (dB) | hole SSIM |",
        "| --- | --- | --- |",
        f"| {name} best of {n} (T={temperature}) | {r['psnr_best']:.2f} | {r['ssim_best']:.3f} |",
        f"| {name} single sample (T={temperature}) | {r['psnr_single']:.2f} | "
        f"{r['ssim_single']:.3f} |",
        f"| {name} mean of {n} samples | {r['psnr_mean']:.2f} | {r['ssim_mean']:.3f} |",
        f"| OpenCV Telea (`cv2.inpaint`, radius 3) | {r['psnr_telea']:.2f} | "
        f"{r['ssim_telea']:.3f} |",
    ] + ([f"| the model's learned fill (Telea + L2 U-Net; the flow's centre) | "
          f"{r['psnr_fill']:.2f} | {r['ssim_fill']:.3f} |"] if "psnr_fill" in r else []) + [
        "",
        f"diversity inside the hole (per-pixel std across the {n} samples, 0-255 scale): "
        f"{r['diversity']:.2f}; mean hole coverage: {100 * r['coverage']:.1f} %",
    ])


def run(args):
    """``cinn evaluate inpainting --data DIR``: prints a Markdown table."""
    model = load_model("inpainting", args.weights)
    if args.num_samples < 1:
        raise CinnError(f"-n must be at least 1, got {args.num_samples}")
    images = load_folder(args.data, min_size=8, limit=args.limit)
    if args.size:
        if args.size < 8:
            raise CinnError(f"--size must be at least 8, got {args.size}")
        images = list(center_crops(images, args.size))
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    start = time.time()
    r = evaluate_images(model, images, n=args.num_samples, temperature=temperature,
                        seed=args.seed, show_progress=True)
    size = f"{args.size}x{args.size} centre crops" if args.size else "full images"
    print(f"inpainting on {args.data}: {len(images)} images ({size}), fixed masks "
          f"(seed {args.seed}, boxes and brush strokes, 10-50 % of the image), "
          f"{time.time() - start:.0f} s\n")
    name = "L2 regressor (one prediction)" if isinstance(model, Regressor) else "cINN"
    print(format_table(r, args.num_samples, temperature, name))
    return 0
