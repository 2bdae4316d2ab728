"""``cinn evaluate inpainting --data DIR``: the posterior report of the cINN against
OpenCV's Telea inpainting and the model's learned fill.

One fixed mask per image (drawn from seed ``[--seed, image index]``: boxes and brush
strokes, 10-50 % of the image). Over the hole pixels only: the ``PosteriorReport``
(``cinn.apps.common.posterior_report``) of the ``-n`` samples at the default
temperature and at T = 1 (CRPS, range coverage, calibration error and coverage gap per
pixel and channel, RGB 0-255; best-of-N, single-sample and mean PSNR and SSIM, RGB
8-bit), Telea and the learned fill as deterministic rows (CRPS = MAE), every figure
with its 95 % bootstrap interval over images; the calibration plots go to ``--out``;
``--temperatures`` sweeps the flow and names the calibrated temperature. Diversity is
the per-pixel std across the samples inside the hole.
"""
import time
from pathlib import Path

import numpy as np

from cinn.apps.common.data import center_crops, load_folder
from cinn.apps.common.outputs import check_out_dir
from cinn.apps.common.posterior_report import (PosteriorReport, flow_key, flow_temperatures,
                                               temperatures_label)
from cinn.apps.common.pretrained import load_model
from cinn.apps.common.progress import progress
from cinn.apps.common.regressor import Regressor
from cinn.apps.common.sampling_args import curve_temperatures
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


def evaluate_images(model, images, n=8, temperature=DEFAULT_TEMPERATURE, seed=0, sweep=(),
                    show_progress=False):
    """``(report, extras)`` over a list of uint8 RGB images with fixed masks: the
    ``PosteriorReport`` (rows: the model at ``temperature``, at T = 1 and at every
    temperature of ``sweep``, ``n`` samples each; Telea; the model's learned fill when
    it has one), scored over the hole pixels (CRPS and coverage per pixel and channel,
    RGB 0-255; PSNR/SSIM of the hole), and ``extras``: the mean per-pixel std across
    the samples at ``temperature`` inside the hole (``diversity``) and the mean hole
    fraction (``coverage``). Image ``i`` is sampled with seed ``seed + i``."""
    report = PosteriorReport(None, seed=seed)
    fill_net = getattr(model, "fill_net", None)
    name = "L2 regressor (one prediction)" if isinstance(model, Regressor) else "cINN"
    extras = {"diversity": [], "coverage": []}
    pairs = list(zip(images, eval_masks(images, seed)))
    for i, (img, mask) in enumerate(progress(pairs, "images") if show_progress else pairs):
        def quality(a, b, mask=mask):
            return hole_psnr(a, b, mask), hole_ssim(a, b, mask)

        for t in flow_temperatures(temperature, sweep):
            samples = inpaint(model, img, mask, n=n, temperature=t, seed=seed + i)
            report.add(flow_key(t), f"{name}, N = {n}, T = {t:g}", samples, img, mask, quality)
            if t == float(temperature):
                extras["diversity"].append(
                    float(samples.astype(np.float64).std(axis=0)[mask].mean()))
        report.add("telea", "OpenCV Telea (`cv2.inpaint`, radius 3)", telea(img, mask)[None],
                   img, mask, quality)
        if fill_net is not None:
            report.add("fill", "learned fill (Telea + L2 U-Net; the flow's centre)",
                       learned_fill(fill_net, img, mask)[None], img, mask, quality)
        extras["coverage"].append(float(mask.mean()))
    return report, {k: float(np.mean(v)) for k, v in extras.items()}


BASELINES = ("fill", "telea")


def run(args):
    """``cinn evaluate inpainting --data DIR``: prints the posterior report (Markdown),
    writes the calibration plots to ``--out``."""
    model = load_model("inpainting", args.weights)
    if args.num_samples < 1:
        raise CinnError(f"-n must be at least 1, got {args.num_samples}")
    sweep = curve_temperatures(args)
    out = check_out_dir(getattr(args, "out", None) or "out")
    images = load_folder(args.data, min_size=8, limit=args.limit)
    if args.size:
        if args.size < 8:
            raise CinnError(f"--size must be at least 8, got {args.size}")
        images = list(center_crops(images, args.size))
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    start = time.time()
    report, extras = evaluate_images(model, images, n=args.num_samples,
                                     temperature=temperature, seed=args.seed, sweep=sweep,
                                     show_progress=True)
    size = f"{args.size}x{args.size} centre crops" if args.size else "full images"
    print(f"inpainting on {args.data}: {len(images)} images ({size}), fixed masks "
          f"(seed {args.seed}, boxes and brush strokes, 10-50 % of the image; "
          f"{100 * extras['coverage']:.1f} % on average), N = {args.num_samples} samples "
          f"at temperature {temperatures_label(temperature)}, "
          f"{time.time() - start:.0f} s; over the hole "
          "pixels: CRPS and coverage per pixel and channel (RGB, 0-255 grey levels), "
          "PSNR/SSIM (RGB); mean over images [95 % bootstrap interval over images]\n")
    dataset = Path(args.data).name
    report.print("inpainting", temperature, sweep, out, dataset, BASELINES)
    print(f"\ndiversity inside the hole at T = {temperature:g} (per-pixel std across the "
          f"{args.num_samples} samples, 0-255): {extras['diversity']:.2f}")
    return 0
