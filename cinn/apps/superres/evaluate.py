"""``cinn evaluate superres --data DIR --scale 4``: the posterior report, per data set.

Per data set (and all together): the ``PosteriorReport``
(``cinn.apps.common.posterior_report``) of the flow's ``-n`` samples at the default
temperature (``--temperature``) and at T = 1, beside the flow's T = 0 output and
bicubic (deterministic: their CRPS is the MAE): CRPS, range coverage, calibration error
and coverage gap per pixel and channel (RGB, 0-255), and best-of-N, single-sample and
mean PSNR/SSIM on the Y channel (BT.601), each with its 95 % bootstrap interval over
images, all with a border of ``scale`` pixels cropped; the calibration plots go to
``--out``. ``--temperatures`` sweeps the flow and names the temperature whose range
coverage is calibrated. Beside: LR-consistency (PSNR between the bicubic downscale of
each uint8 sample and the LR input, RGB), diversity (per-pixel std across the samples,
RGB, 0-255 units), the NTIRE 2021 "Learning the SR space" diversity score of
``--diversity-samples`` samples (``diversity_score``) and the block-edge ratio
(``block_edge_ratio``: a visible s x s grid is well above 1) of the samples at the
default temperature. LR images are ``imresize(HR, 1/scale)``
(``cinn.apps.superres.resize``).
"""
import time
from pathlib import Path

import numpy as np

from cinn.apps.common.data import center_crops
from cinn.apps.common.outputs import check_out_dir
from cinn.apps.common.posterior_report import (PosteriorReport, flow_key, flow_temperatures,
                                               temperatures_label)
from cinn.apps.common.images import IMAGE_SUFFIXES, list_images, read_image
from cinn.apps.common.progress import progress
from cinn.apps.common.sampling_args import curve_temperatures
from cinn.apps.superres import DEFAULT_TEMPERATURE, infer
from cinn.apps.superres.resize import downscale, make_lr
from cinn.errors import CinnError


def rgb_to_y(img):
    """BT.601 luma of an RGB image in [0, 255] (MATLAB ``rgb2ycbcr``, unrounded)."""
    img = np.asarray(img, np.float64) / 255.0
    return 16.0 + img @ np.array([65.481, 128.553, 24.966])


def psnr(a, b, peak=255.0):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak ** 2 / mse))


def ssim_y(a, b):
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, data_range=255.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


def block_edge_ratio(img, s):
    """Mean |step| of Y between neighbouring pixels across the edges of the s x s blocks
    over that inside them, both axes averaged: about 1 for a photo (1.04 on Set14 HR),
    1.2 for bicubic upsampling (its kernel's phase), well above 1 where an s x s block
    grid shows (2.7 for the first 8x model's samples)."""
    y = rgb_to_y(img)
    ratios = []
    for axis in (0, 1):
        step = np.abs(np.diff(y, axis=axis))
        edge = (np.arange(step.shape[axis]) % s) == s - 1
        ratios.append(step.compress(edge, axis=axis).mean()
                      / step.compress(~edge, axis=axis).mean())
    return float(np.mean(ratios))


def _crop(img, border):
    return img[border:-border, border:-border] if border else img


def y_metrics(sr, hr, border):
    ys, yh = _crop(rgb_to_y(sr), border), _crop(rgb_to_y(hr), border)
    return psnr(ys, yh), ssim_y(ys, yh)


def datasets(folder):
    """``[(name, folder)]``: the folder itself if it holds images, else its sub-folders
    that do (e.g. ``eval/`` with ``set5/``, ``set14/``, ``bsd68/``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CinnError(f"{folder}: no such folder")
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
        return [(folder.name, folder)]
    subs = [(p.name, p) for p in sorted(folder.iterdir()) if p.is_dir()
            and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir())]
    if not subs:
        raise CinnError(f"{folder}: no images (.png, .jpg, ...) found")
    return subs


def diversity_score(samples, hr, patch=16):
    """The NTIRE 2021 "Learning the Super-Resolution Space" diversity score of the
    samples of one image, in percent: ``(global best - local best) / global best x 100``.

    The challenge (Lugmayr et al. 2021; ``measure.py`` of its toolkit) draws 10
    samples, computes a dense distance map between each sample and the ground truth
    (spatial LPIPS), takes as *global best* the lowest mean distance of a whole
    sample and as *local best* the mean over positions of the lowest distance at
    that position among the samples. LPIPS needs pretrained AlexNet weights that
    this package cannot ship or download, so here the distance is the squared
    error (RGB, 0-255, the uint8 samples, no border cropped, as in the challenge)
    pooled over non-overlapping ``patch`` x ``patch`` patches of the HR image
    (16 x 16; the last row and column of patches may be smaller): *global best* is
    the MSE of the best sample (the one of highest PSNR), *local best* the MSE of
    the image assembled from the best sample of each patch, so
    ``score = (1 - 10 ** ((PSNR_global - PSNR_local) / 10)) x 100``. 0 when all
    samples are equal (a deterministic method) or a sample is exact; it grows when
    different samples are right in different places. Patches keep it from rewarding
    per-pixel noise, which a per-pixel minimum over 10 noisy samples would.
    """
    err = np.mean((np.asarray(samples, np.float64) - np.asarray(hr, np.float64)) ** 2, axis=-1)
    _, h, w = err.shape
    sums = np.add.reduceat(np.add.reduceat(err, np.arange(0, h, patch), axis=1),
                           np.arange(0, w, patch), axis=2)          # (n, patches_y, patches_x)
    global_best = float(sums.sum(axis=(1, 2)).min() / (h * w))  # same sums: exact 0 for
    local_best = float(sums.min(axis=0).sum() / (h * w))          # equal samples
    return 0.0 if global_best == 0 else max(0.0, (global_best - local_best) / global_best * 100)


def evaluate_folder(model, folder, n=8, temperature=DEFAULT_TEMPERATURE, seed=0, limit=None,
                    size=None, sweep=(), diversity_samples=0, show_progress=False):
    """``(report, extras)`` of one folder: the ``PosteriorReport`` (rows: the flow at
    ``temperature``, at T = 1 and at every temperature of ``sweep``, ``n`` samples each;
    the flow's T = 0 output; bicubic), scored on the HR image with a ``scale``-pixel
    border cropped (CRPS and coverage in RGB 0-255, PSNR/SSIM on Y), and the mean over
    images of the SR metrics of the samples at ``temperature`` (``EXTRA_COLUMNS``).
    With ``diversity_samples`` (NTIRE: 10) also ``ntire_diversity``
    (``diversity_score``; ``max(n, diversity_samples)`` samples are drawn at
    ``temperature``, the first ``n`` are the report's). Image ``i`` is sampled with
    seed ``seed + i`` at every temperature."""
    s = model.scale
    report = PosteriorReport(lambda a, b: y_metrics(a, b, 0), seed=seed)
    rows = []
    paths = list_images(folder)[:limit]
    temps = flow_temperatures(temperature, sweep)
    for i, path in enumerate(progress(paths, f"images of {Path(folder).name}")
                             if show_progress else paths):
        hr = read_image(path)
        if size:
            hr = center_crops([hr], size)[0]
        hh, ww = (hr.shape[0] // s) * s, (hr.shape[1] // s) * s   # the usual mod-crop
        if hh < 4 * s or ww < 4 * s:
            continue
        hr = hr[:hh, :ww]
        lr = make_lr(hr, s)
        truth = _crop(hr, s)
        for t in temps:
            k = max(n, int(diversity_samples)) if t == float(temperature) else n
            drawn = infer.upscale(model, lr, k, t, seed + i)
            samples = drawn[:n]
            report.add(flow_key(t), f"cINN, N = {n}, T = {t:g}",
                       np.stack([_crop(x, s) for x in samples]), truth)
            if t != float(temperature):
                continue
            row = {
                "lr_psnr": np.mean([psnr(downscale(x.astype(np.float64), s), lr)
                                    for x in samples]),
                "diversity": float(samples.astype(np.float64).std(axis=0).mean())
                if n > 1 else 0.0,
                "block_edges": np.mean([block_edge_ratio(x, s) for x in samples]),
                "block_edges_hr": block_edge_ratio(hr, s),
            }
            if diversity_samples:
                row["ntire_diversity"] = diversity_score(drawn[:int(diversity_samples)], hr)
            rows.append(row)
        mode = infer.upscale(model, lr, 1, 0.0, seed + i)
        report.add("mode", "the flow's T = 0 output", _crop(mode[0], s)[None], truth)
        report.add("bicubic", "bicubic", _crop(infer.bicubic(lr, s), s)[None], truth)
    if not rows:
        raise CinnError(f"{folder}: no image large enough for {s}x evaluation")
    extras = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    extras["images"] = len(rows)
    return report, extras


BASELINES = ("mode", "bicubic")

EXTRA_COLUMNS = [("images", "images", "{:d}"), ("lr_psnr", "LR-PSNR", "{:.2f}"),
                 ("diversity", "diversity", "{:.2f}"), ("block_edges", "block edges", "{:.2f}"),
                 ("block_edges_hr", "block edges HR", "{:.2f}")]


def format_table(results):
    """The SR metrics of the samples at the chosen temperature: ``results`` is
    ``[(dataset, extras)]``."""
    columns = list(EXTRA_COLUMNS)
    if all("ntire_diversity" in r for _, r in results):
        columns.append(("ntire_diversity", "NTIRE diversity (%)", "{:.2f}"))
    head = "| dataset | " + " | ".join(c[1] for c in columns) + " |"
    lines = [head, "|" + " --- |" * (len(columns) + 1)]
    for name, r in results:
        lines.append(f"| {name} | " + " | ".join(
            fmt.format(int(r[k]) if k == "images" else r[k]) for k, _, fmt in columns) + " |")
    return "\n".join(lines)


def run(args):
    """``cinn evaluate superres``: prints the posterior report per data set (Markdown),
    writes the calibration plots to ``--out``."""
    model = infer.load(args.weights, args.scale)
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    if args.num_samples < 1:
        raise CinnError(f"-n must be at least 1, got {args.num_samples}")
    sweep = curve_temperatures(args)
    div = int(getattr(args, "diversity_samples", 0) or 0)
    if div == 1 or div < 0:
        raise CinnError(f"--diversity-samples must be 0 (off) or at least 2, got {div}")
    out = check_out_dir(getattr(args, "out", None) or "out")
    n, s = args.num_samples, args.scale
    print(f"# superres {s}x: N = {n} samples per image at temperature "
          f"{temperatures_label(temperature)}, "
          f"seed {args.seed}; {s}-pixel border cropped; CRPS and coverage per pixel and "
          "channel (RGB, 0-255 grey levels), PSNR/SSIM on Y (BT.601); mean over images "
          "[95 % bootstrap interval over images]" + (
              f"; NTIRE diversity score of {div} samples (squared error over 16x16 "
              "patches, RGB)" if div else ""), flush=True)
    reports, extras = [], []
    for name, folder in datasets(args.data):
        t = time.time()
        report, extra = evaluate_folder(model, folder, n, temperature, args.seed, args.limit,
                                        args.size, sweep, div, show_progress=True)
        reports.append((name, report))
        extras.append((name, extra))
        print(f"\n## {name}: {extra['images']} images in {time.time() - t:.0f} s", flush=True)
        report.print(f"superres_x{s}", temperature, sweep, out, name, BASELINES)
    if len(reports) > 1:
        print(f"\n## all {len(reports)} data sets together "
              f"({sum(e['images'] for _, e in extras)} images)")
        merged = reports[0][1].merged([r for _, r in reports[1:]])
        merged.print(f"superres_x{s}", temperature, sweep, out, "all", BASELINES)
    print(f"\n# the samples at T = {temperature:g}: LR-consistency, diversity, block edges")
    print(format_table(extras))
    return 0
