"""``cinn evaluate superres --data DIR --scale 4``: the SR literature's metrics.

Per dataset: PSNR and SSIM on the Y channel (BT.601, border of ``scale`` pixels
cropped) of single samples (averaged over the ``-n`` samples of every image) at
the given temperature, of the mean of the samples and of the bicubic baseline;
LR-consistency (PSNR between the bicubic downscale of each uint8 sample and the
LR input, RGB); diversity (per-pixel std across the samples, RGB, 0-255 units,
averaged). LR images are ``imresize(HR, 1/scale)`` (``apps.superres.resize``).
"""
import time
from pathlib import Path

import numpy as np

from apps.common.data import center_crops
from apps.common.images import IMAGE_SUFFIXES, list_images, read_image
from apps.superres import infer
from apps.superres.resize import downscale, make_lr
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


def evaluate_folder(model, folder, n=8, temperature=0.9, seed=0, limit=None, size=None):
    """Mean metrics over the images of one folder (a dict)."""
    s = model.scale
    rows = []
    for i, path in enumerate(list_images(folder)[:limit]):
        hr = read_image(path)
        if size:
            hr = center_crops([hr], size)[0]
        hh, ww = (hr.shape[0] // s) * s, (hr.shape[1] // s) * s   # the usual mod-crop
        if hh < 2 * s or ww < 2 * s:
            continue
        hr = hr[:hh, :ww]
        lr = make_lr(hr, s)
        samples = infer.upscale(model, lr, n, temperature, seed + i)
        bic = infer.bicubic(lr, s)
        single = [y_metrics(x, hr, s) for x in samples]
        mean = infer.to_uint8(samples.astype(np.float64).mean(axis=0))
        rows.append({
            "psnr": np.mean([p for p, _ in single]), "ssim": np.mean([q for _, q in single]),
            "psnr_mean": y_metrics(mean, hr, s)[0],
            "psnr_bicubic": y_metrics(bic, hr, s)[0], "ssim_bicubic": y_metrics(bic, hr, s)[1],
            "lr_psnr": np.mean([psnr(downscale(x.astype(np.float64), s), lr) for x in samples]),
            "diversity": float(samples.astype(np.float64).std(axis=0).mean()) if n > 1 else 0.0,
        })
    if not rows:
        raise CinnError(f"{folder}: no image large enough for {s}x evaluation")
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["images"] = len(rows)
    return out


COLUMNS = [("images", "images", "{:d}"), ("psnr", "PSNR-Y", "{:.2f}"),
           ("ssim", "SSIM-Y", "{:.4f}"), ("psnr_mean", "PSNR-Y mean", "{:.2f}"),
           ("psnr_bicubic", "PSNR-Y bicubic", "{:.2f}"), ("ssim_bicubic", "SSIM-Y bicubic",
                                                          "{:.4f}"),
           ("lr_psnr", "LR-PSNR", "{:.2f}"), ("diversity", "diversity", "{:.2f}")]


def format_table(results):
    head = "| dataset | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + " --- |" * (len(COLUMNS) + 1)]
    for name, r in results:
        lines.append(f"| {name} | " + " | ".join(
            fmt.format(int(r[k]) if k == "images" else r[k]) for k, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def run(args):
    """``cinn evaluate superres``: prints a Markdown table."""
    model = infer.load(args.weights, args.scale)
    temperature = infer.DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    if args.num_samples < 1:
        raise CinnError(f"-n must be at least 1, got {args.num_samples}")
    print(f"# superres {args.scale}x: {args.num_samples} samples per image at temperature "
          f"{temperature:g}, seed {args.seed}; Y-channel metrics with a {args.scale}-pixel "
          "border cropped", flush=True)
    results = []
    for name, folder in datasets(args.data):
        t = time.time()
        r = evaluate_folder(model, folder, args.num_samples, temperature, args.seed,
                            args.limit, args.size)
        results.append((name, r))
        print(f"# {name}: {r['images']} images in {time.time() - t:.0f} s", flush=True)
    print(format_table(results))
    return 0
