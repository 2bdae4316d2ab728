"""``cinn evaluate superres --data DIR --scale 4``: the SR literature's metrics.

Per dataset: PSNR and SSIM on the Y channel (BT.601, border of ``scale`` pixels
cropped) of single samples (averaged over the ``-n`` samples of every image) at
the given temperature, of the mean of the samples and of the bicubic baseline;
LR-consistency (PSNR between the bicubic downscale of each uint8 sample and the
LR input, RGB); diversity (per-pixel std across the samples, RGB, 0-255 units,
averaged); the NTIRE 2021 "Learning the SR space" diversity score of
``--diversity-samples`` samples (``diversity_score``); and the quality/diversity
curve: PSNR-Y of one sample per image at each of ``--temperatures``; the block-edge
ratio of the samples (``block_edge_ratio``: a visible s x s grid is well above 1).
LR images are ``imresize(HR, 1/scale)`` (``cinn.apps.superres.resize``).
"""
import time
from pathlib import Path

import numpy as np

from cinn.apps.common.data import center_crops
from cinn.apps.common.images import IMAGE_SUFFIXES, list_images, read_image
from cinn.apps.common.progress import progress
from cinn.apps.common.sampling_args import curve_temperatures
from cinn.apps.superres import infer
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


def evaluate_folder(model, folder, n=8, temperature=0.9, seed=0, limit=None, size=None,
                    temperatures=(), diversity_samples=0, show_progress=False):
    """Mean metrics over the images of one folder (a dict). With ``diversity_samples``
    (NTIRE: 10) also ``ntire_diversity`` (``diversity_score``; ``max(n,
    diversity_samples)`` samples are drawn at ``temperature``, the first ``n`` make
    the other columns); with ``temperatures`` also ``psnr_t<T>`` per temperature: the
    PSNR-Y of one sample per image (seed ``seed + image index``)."""
    s = model.scale
    rows = []
    paths = list_images(folder)[:limit]
    for i, path in enumerate(progress(paths, f"images of {Path(folder).name}")
                             if show_progress else paths):
        hr = read_image(path)
        if size:
            hr = center_crops([hr], size)[0]
        hh, ww = (hr.shape[0] // s) * s, (hr.shape[1] // s) * s   # the usual mod-crop
        if hh < 2 * s or ww < 2 * s:
            continue
        hr = hr[:hh, :ww]
        lr = make_lr(hr, s)
        drawn = infer.upscale(model, lr, max(n, int(diversity_samples)), temperature, seed + i)
        samples = drawn[:n]
        bic = infer.bicubic(lr, s)
        single = [y_metrics(x, hr, s) for x in samples]
        mean = infer.to_uint8(samples.astype(np.float64).mean(axis=0))
        psnr_bicubic, ssim_bicubic = y_metrics(bic, hr, s)
        row = {
            "psnr": np.mean([p for p, _ in single]), "ssim": np.mean([q for _, q in single]),
            "psnr_mean": y_metrics(mean, hr, s)[0],
            "psnr_bicubic": psnr_bicubic, "ssim_bicubic": ssim_bicubic,
            "lr_psnr": np.mean([psnr(downscale(x.astype(np.float64), s), lr) for x in samples]),
            "diversity": float(samples.astype(np.float64).std(axis=0).mean()) if n > 1 else 0.0,
            "block_edges": np.mean([block_edge_ratio(x, s) for x in samples]),
            "block_edges_hr": block_edge_ratio(hr, s),
        }
        if diversity_samples:
            row["ntire_diversity"] = diversity_score(drawn[:int(diversity_samples)], hr)
        for t in temperatures:
            x = infer.upscale(model, lr, 1, float(t), seed + i)[0]
            row[temperature_key(t)] = y_metrics(x, hr, s)[0]
        rows.append(row)
    if not rows:
        raise CinnError(f"{folder}: no image large enough for {s}x evaluation")
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["images"] = len(rows)
    return out


#: temperatures of the quality/diversity curve when ``--temperatures`` is not given
CURVE_TEMPERATURES = (0, 0.3, 0.5, 0.7, 0.9)


def temperature_key(t):
    return f"psnr_t{float(t):g}"


COLUMNS = [("images", "images", "{:d}"), ("psnr", "PSNR-Y", "{:.2f}"),
           ("ssim", "SSIM-Y", "{:.4f}"), ("psnr_mean", "PSNR-Y mean", "{:.2f}"),
           ("psnr_bicubic", "PSNR-Y bicubic", "{:.2f}"), ("ssim_bicubic", "SSIM-Y bicubic",
                                                          "{:.4f}"),
           ("lr_psnr", "LR-PSNR", "{:.2f}"), ("diversity", "diversity", "{:.2f}"),
           ("block_edges", "block edges", "{:.2f}"), ("block_edges_hr", "block edges HR",
                                                      "{:.2f}")]


def format_table(results):
    columns = list(COLUMNS)
    if all("ntire_diversity" in r for _, r in results):
        columns.append(("ntire_diversity", "NTIRE diversity (%)", "{:.2f}"))
    head = "| dataset | " + " | ".join(c[1] for c in columns) + " |"
    lines = [head, "|" + " --- |" * (len(columns) + 1)]
    for name, r in results:
        lines.append(f"| {name} | " + " | ".join(
            fmt.format(int(r[k]) if k == "images" else r[k]) for k, _, fmt in columns) + " |")
    return "\n".join(lines)


def format_curve(results, temperatures):
    """PSNR-Y of single samples per temperature (one sample per image), and bicubic."""
    head = ("| dataset | " + " | ".join(f"T = {float(t):g}" for t in temperatures)
            + " | bicubic |")
    lines = [head, "|" + " --- |" * (len(temperatures) + 2)]
    for name, r in results:
        lines.append(f"| {name} | " + " | ".join(
            f"{r[temperature_key(t)]:.2f}" for t in temperatures) + f" | {r['psnr_bicubic']:.2f} |")
    return "\n".join(lines)


def run(args):
    """``cinn evaluate superres``: prints Markdown tables."""
    model = infer.load(args.weights, args.scale)
    temperature = infer.DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    if args.num_samples < 1:
        raise CinnError(f"-n must be at least 1, got {args.num_samples}")
    temperatures = curve_temperatures(args, CURVE_TEMPERATURES)
    div = int(getattr(args, "diversity_samples", 0) or 0)
    if div == 1 or div < 0:
        raise CinnError(f"--diversity-samples must be 0 (off) or at least 2, got {div}")
    print(f"# superres {args.scale}x: {args.num_samples} samples per image at temperature "
          f"{temperature:g}, seed {args.seed}; Y-channel metrics with a {args.scale}-pixel "
          "border cropped" + (f"; NTIRE diversity score of {div} samples (squared error "
                              "over 16x16 patches, RGB)" if div else ""), flush=True)
    results = []
    for name, folder in datasets(args.data):
        t = time.time()
        r = evaluate_folder(model, folder, args.num_samples, temperature, args.seed,
                            args.limit, args.size, temperatures, div, show_progress=True)
        results.append((name, r))
        print(f"# {name}: {r['images']} images in {time.time() - t:.0f} s", flush=True)
    print(format_table(results))
    if temperatures:
        print(f"\n# PSNR-Y of one sample per image at each temperature ({args.scale}x)")
        print(format_curve(results, temperatures))
    return 0
