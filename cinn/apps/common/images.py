"""Reading and writing images with clear errors, padding, grids, colour spaces."""
import io
import logging
import os
import sys
import warnings
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


#: EXIF orientation -> the array operation that shows the pixels as a viewer does
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}


def _quiet_decode(data):
    """``cv2.imdecode`` (unchanged: bit depth and alpha kept, first frame of an
    animation) with OpenCV's and libpng's messages kept off stderr; ``None`` for
    what OpenCV cannot decode, also where it raises (a header whose size is beyond
    its limits: found by ``tests/test_fuzz_readers.py``)."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # "[ WARN ...]"
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)            # libpng/libjpeg print straight to fd 2
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def exif_orientation(data):
    """The EXIF orientation tag (1-8) of encoded image bytes; 1 when there is none."""
    log = logging.getLogger("PIL")   # Pillow logs what it cannot decode ("More
    level = log.level                 # samples per pixel than can be decoded")
    try:
        from PIL import Image

        log.setLevel(logging.CRITICAL + 1)
        with warnings.catch_warnings():   # "Corrupt EXIF data", DecompressionBomb...:
            warnings.simplefilter("ignore")   # unreadable EXIF is no EXIF
            with Image.open(io.BytesIO(data.tobytes() if hasattr(data, "tobytes")
                                       else data)) as im:
                value = int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - no readable EXIF: as stored
        return 1
    finally:
        log.setLevel(level)
    return value if value in _ORIENT else 1


def to_rgb_uint8(img, background=255, what="image"):
    """A decoded image (OpenCV channel order: grey, grey+alpha, BGR or BGRA; any
    dtype) as uint8 RGB (H, W, 3), following the reading rules:

    * 8-bit as is; 16-bit scaled by 255/65535 (rounded);
    * float (and other) pixel types scaled from their range: values in 0-1 to
      0-255, values in 0-255 kept, anything else stretched from min..max;
      NaN or infinite values are an error;
    * an alpha channel is composited over ``background`` (255: white).
    """
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise CinnError(f"{what}: unsupported channel count "
                        f"{img.shape[2] if img.ndim == 3 else img.ndim}")
    alpha = None
    if img.shape[2] in (2, 4):
        img, alpha = img[..., :-1], img[..., -1]
    if img.dtype == np.uint8:
        values = img
    elif img.dtype == np.uint16:
        values = img.astype(np.float32) * np.float32(255.0 / 65535.0)
    else:
        values = img.astype(np.float32)
        if not np.isfinite(values).all():
            raise CinnError(f"{what}: has NaN or infinite pixel values")
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0 and hi <= 1:
            values = values * np.float32(255.0)
        elif lo < 0 or hi > 255:
            values = (values - lo) * np.float32(255.0 / max(hi - lo, 1e-12))
    if alpha is not None:
        if alpha.dtype == np.uint8:
            a = alpha.astype(np.float32) / 255.0
        elif alpha.dtype == np.uint16:
            a = alpha.astype(np.float32) / 65535.0
        else:
            a = np.clip(np.nan_to_num(alpha.astype(np.float32)), 0.0, 1.0)
        values = values * a[..., None] + np.float32(background) * (1.0 - a[..., None])
    if values.dtype != np.uint8:
        values = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    if values.shape[2] == 1:
        return np.repeat(values, 3, axis=2)
    return np.ascontiguousarray(values[..., ::-1])   # BGR -> RGB


def read_image(path, min_size=2, background=255):
    """Read an image file as uint8 RGB (H, W, 3) as a photo viewer shows it:
    EXIF orientation applied; 16-bit and float pixels scaled (``to_rgb_uint8``);
    transparency composited over ``background`` (white; masks use black);
    an animation's first frame; greyscale files come back with three equal
    channels. ``skimage:NAME`` reads a picture scikit-image ships (e.g.
    ``skimage:astronaut``). Raises ``CinnError`` with a one-line reason for a
    missing, unreadable, corrupt or too small file."""
    if str(path).startswith(SKIMAGE_PREFIX):
        return _read_skimage(str(path)[len(SKIMAGE_PREFIX):], min_size)
    path = Path(path)
    if not path.exists():
        raise CinnError(f"{path}: no such file")
    if path.is_dir():
        raise CinnError(f"{path}: is a folder, not an image")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = _quiet_decode(data) if data.size else None
    if img is None:
        raise CinnError(f"{path}: not a readable image (corrupt or unsupported format)")
    img = to_rgb_uint8(img, background, what=str(path))
    orientation = exif_orientation(data)
    if orientation != 1:
        img = np.ascontiguousarray(_ORIENT[orientation](img))
    if min(img.shape[:2]) < min_size:
        raise CinnError(f"{path}: image is {img.shape[1]}x{img.shape[0]} pixels; "
                        f"at least {min_size}x{min_size} is needed")
    return img


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
