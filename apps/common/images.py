"""Reading and writing images with clear errors, padding, grids, colour spaces."""
from pathlib import Path

import cv2
import numpy as np

from cinn.errors import CinnError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}

#: ``skimage:NAME`` inputs: pictures scikit-image ships (no download needed)
SKIMAGE_PREFIX = "skimage:"
SKIMAGE_PICTURES = ("astronaut", "camera", "cat", "chelsea", "coffee", "colorwheel",
                    "immunohistochemistry", "rocket")


def image_name(path):
    """A short name for outputs: the file stem, or NAME for ``skimage:NAME``."""
    text = str(path)
    if text.startswith(SKIMAGE_PREFIX):
        return text[len(SKIMAGE_PREFIX):]
    return Path(text).stem


def _read_skimage(name, min_size):
    if name not in SKIMAGE_PICTURES:
        raise CinnError(f"{SKIMAGE_PREFIX}{name}: unknown scikit-image picture; "
                        f"choose one of {', '.join(SKIMAGE_PICTURES)}")
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3].astype(np.uint8))
    if min(img.shape[:2]) < min_size:  # pragma: no cover - the shipped pictures are large
        raise CinnError(f"{SKIMAGE_PREFIX}{name}: image too small")
    return img


def read_image(path, min_size=2):
    """Read an image file as uint8 RGB (H, W, 3); greyscale files come back with
    three equal channels. ``skimage:NAME`` reads a picture scikit-image ships
    (e.g. ``skimage:astronaut``). Raises ``CinnError`` with a one-line reason for
    a missing, unreadable, corrupt or too small file."""
    if str(path).startswith(SKIMAGE_PREFIX):
        return _read_skimage(str(path)[len(SKIMAGE_PREFIX):], min_size)
    path = Path(path)
    if not path.exists():
        raise CinnError(f"{path}: no such file")
    if path.is_dir():
        raise CinnError(f"{path}: is a folder, not an image")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise CinnError(f"{path}: not a readable image (corrupt or unsupported format)")
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    else:
        raise CinnError(f"{path}: unsupported channel count {img.shape[2]}")
    if min(img.shape[:2]) < min_size:
        raise CinnError(f"{path}: image is {img.shape[1]}x{img.shape[0]} pixels; "
                        f"at least {min_size}x{min_size} is needed")
    return np.ascontiguousarray(img)


def is_greyscale(rgb, tol=2):
    """True when all three channels are (nearly) equal."""
    rgb = rgb.astype(np.int16)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() <= tol
                and np.abs(rgb[..., 1] - rgb[..., 2]).max() <= tol)


def write_image(path, rgb):
    """Write uint8 RGB (or greyscale) to ``path`` (format from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.asarray(rgb)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img):
        raise CinnError(f"{path}: could not write image")
    return path


def pad_to_multiple(img, multiple, mode="reflect"):
    """Pad (H, W, ...) at the bottom/right to multiples of ``multiple``.
    Returns the padded array and the original (H, W) for ``crop``."""
    h, w = img.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        pad = [(0, ph), (0, pw)] + [(0, 0)] * (img.ndim - 2)
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "edge"
        img = np.pad(img, pad, mode=mode)
    return img, (h, w)


def make_grid(rows, gap=4, background=255):
    """Tile a list of rows (each a list of (H, W, 3) uint8 images of one size per
    row, at most as many as the widest row) into one uint8 picture."""
    heights = [max(im.shape[0] for im in row) for row in rows]
    widths = [sum(im.shape[1] for im in row) + gap * (len(row) - 1) for row in rows]
    grid = np.full((sum(heights) + gap * (len(rows) - 1), max(widths), 3), background, np.uint8)
    y = 0
    for row, h in zip(rows, heights):
        x = 0
        for im in row:
            im = im if im.ndim == 3 else np.repeat(im[..., None], 3, axis=2)
            grid[y:y + im.shape[0], x:x + im.shape[1]] = im
            x += im.shape[1] + gap
        y += h + gap
    return grid


def list_images(folder):
    """Image files in ``folder`` (sorted). Raises ``CinnError`` when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CinnError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CinnError(f"{folder}: no images (.png, .jpg, ...) found")
    return files
