"""Masks for inpainting: ``True`` (white in a mask image) marks missing pixels.

* ``random_mask``: a seeded random box or free-form brush strokes covering
  ``coverage`` (10-50 % by default) of the image, for training and evaluation;
* ``read_mask`` / ``box_mask`` / ``parse_box`` / ``fit_box``: user masks for the
  command line.
"""
import cv2
import numpy as np

from cinn.apps.common.images import read_image
from cinn.errors import CinnError

#: fraction of the image the training/evaluation masks cover
COVERAGE = (0.1, 0.5)


def box_mask(shape, box):
    """Boolean (H, W) mask, ``True`` inside ``box = (x, y, w, h)`` (clipped to the image)."""
    h, w = shape
    x0, y0, bw, bh = (int(v) for v in box)
    mask = np.zeros((h, w), bool)
    mask[max(y0, 0):max(y0 + bh, 0), max(x0, 0):max(x0 + bw, 0)] = True
    return mask


def parse_box(text, shape=None):
    """``"x,y,w,h"`` -> ``(x, y, w, h)``; with ``shape`` (H, W) the box must lie
    (at least partly) inside the image."""
    try:
        box = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0 or box[0] < 0 or box[1] < 0:
        raise CinnError(f"--box must be x,y,w,h with x, y >= 0 and w, h > 0 "
                        f"(pixels), got {text!r}")
    if shape is not None and (box[0] >= shape[1] or box[1] >= shape[0]):
        raise CinnError(f"--box {text} starts outside the {shape[1]}x{shape[0]} image")
    return box


def fit_box(box, shape):
    """``(box, note)``: ``box = (x, y, w, h)`` cut to the ``shape`` (H, W) image, and
    a one-line note saying so when it ran past the image's edge (else ``None``)."""
    x, y, w, h = (int(v) for v in box)
    cut = (x, y, max(0, min(w, shape[1] - x)), max(0, min(h, shape[0] - y)))
    if cut == (x, y, w, h):
        return cut, None
    return cut, (f"--box {x},{y},{w},{h} runs past the edge of the {shape[1]}x{shape[0]} "
                 f"image: cut to {','.join(map(str, cut))}")


def read_mask(path, shape=None):
    """Read a mask image: white (> 127 in any channel) = missing; transparency is
    composited over black (transparent pixels are known); EXIF orientation applied.

    ``shape`` (H, W): the mask must have that size, else ``CinnError``.
    """
    img = read_image(path, min_size=1, background=0)   # transparent = known
    if shape is not None and img.shape[:2] != tuple(shape):
        raise CinnError(f"{path}: mask is {img.shape[1]}x{img.shape[0]} pixels but the image "
                        f"is {shape[1]}x{shape[0]}; they must have the same size")
    return img.max(axis=2) > 127


def _strokes(shape, target, rng):
    """Free-form brush strokes (random walks of thick lines) until ``target`` coverage."""
    h, w = shape
    side = min(h, w)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(200):
        if mask.mean() >= target:
            break
        x, y = int(rng.integers(w)), int(rng.integers(h))
        width = int(rng.integers(max(1, side // 16), max(2, side // 6) + 1))
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(2, 7))):
            angle += rng.uniform(-1.2, 1.2)
            length = rng.uniform(0.1, 0.35) * side
            nx = int(np.clip(x + length * np.cos(angle), 0, w - 1))
            ny = int(np.clip(y + length * np.sin(angle), 0, h - 1))
            cv2.line(mask, (x, y), (nx, ny), 1, width)
            cv2.circle(mask, (nx, ny), width // 2, 1, -1)
            x, y = nx, ny
            if mask.mean() >= target:
                break
    return mask.astype(bool)


def _box(shape, target, rng):
    h, w = shape
    aspect = np.exp(rng.uniform(-0.6, 0.6))
    bh = int(np.clip(round(np.sqrt(target * h * w / aspect)), 1, h))
    bw = int(np.clip(round(target * h * w / bh), 1, w))
    y, x = int(rng.integers(h - bh + 1)), int(rng.integers(w - bw + 1))
    return box_mask(shape, (x, y, bw, bh))


def random_mask(shape, rng, coverage=COVERAGE, kind=None):
    """A random boolean (H, W) mask covering a fraction within ``coverage``.

    ``kind``: ``"box"``, ``"strokes"`` or ``None`` (either, with equal odds).
    ``rng``: a ``numpy.random.Generator`` (or an int seed).
    """
    rng = np.random.default_rng(rng)
    lo, hi = coverage
    kind = kind or ("box" if rng.random() < 0.5 else "strokes")
    if kind not in ("box", "strokes"):
        raise ValueError(f"kind must be 'box', 'strokes' or None, got {kind!r}")
    for _ in range(20):
        target = rng.uniform(lo, hi)
        mask = _box(shape, target, rng) if kind == "box" else _strokes(shape, target, rng)
        if lo <= mask.mean() <= hi:
            return mask
    # fall back to a box of exactly the middle coverage (always within range)
    return _box(shape, (lo + hi) / 2, rng)


def random_masks(count, shape, rng, coverage=COVERAGE):
    """``count`` random masks, shape (count, H, W) bool."""
    rng = np.random.default_rng(rng)
    return np.stack([random_mask(shape, rng, coverage) for _ in range(count)])
