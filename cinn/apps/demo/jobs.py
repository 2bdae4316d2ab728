"""The demo's work, without any web framework: the models (loaded once), the
checks of an upload, and one function per app that returns the samples, the
pictures to show beside them and the uncertainty map.

Every problem with the input is a ``DemoInputError`` whose message is meant
for the page (one sentence, no server paths).
"""
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cinn.apps import SAVED_MODELS
from cinn.apps.colorization.defaults import DEFAULT_TEMPERATURE as COLOR_TEMPERATURE
from cinn.apps.colorization.defaults import DEFAULT_WEIGHTS as COLOR_WEIGHTS
from cinn.apps.colorization.defaults import (DEFAULT_LOCAL_TEMPERATURE, DRAW_HUE,
                                             DRAW_SATURATION)
from cinn.apps.inpainting import DEFAULT_TEMPERATURE as INPAINT_TEMPERATURE
from cinn.apps.superres import DEFAULT_TEMPERATURE as SR_TEMPERATURE
from cinn.errors import CinnError

#: the most samples one request may ask for
MAX_SAMPLES = 8
#: the largest input each tab takes, in pixels (width x height), and how it is stated
LIMITS = {
    "colorization": (1024 * 1024, "1024x1024"),
    "superres4": (256 * 256, "256x256"),
    "superres8": (128 * 128, "128x128"),
    "inpainting": (512 * 512, "512x512"),
}
#: the model files of a weights folder (laid out like ``saved_models/``); 8x is optional
MODEL_FILES = {
    "colorization": ("colorization", f"colorization/{COLOR_WEIGHTS}"),
    "superres4": ("superres", "superres/model.keras"),
    "superres8": ("superres", "superres/superres_x8.keras"),
    "inpainting": ("inpainting", "inpainting/model.keras"),
}
OPTIONAL = ("superres8",)
#: a weights folder of the former layout: its colorization model (a flow without
#: global latents) when the default file is missing
FALLBACK = {"colorization": "colorization/model.keras"}
#: uncertainty maps smaller than this (pixels, longer side) are shown enlarged
MAP_MIN_SIDE = 256


class DemoInputError(CinnError):
    """Bad input in the page: the message is shown there."""


def load_models(weights_dir=None, say=print):
    """All the demo's models, once: ``{"colorization", "superres4", "superres8",
    "inpainting"}`` -> model (``superres8`` left out when its file is missing).
    ``weights_dir`` is laid out like ``saved_models/`` (default: the shipped ones)."""
    from cinn.apps.common.pretrained import load_model

    root = Path(weights_dir) if weights_dir else SAVED_MODELS
    if not root.is_dir():
        raise CinnError(f"{root}: no such folder")
    models = {}
    for key, (app, rel) in MODEL_FILES.items():
        path = root / rel
        if not path.exists() and key in FALLBACK and (root / FALLBACK[key]).exists():
            path = root / FALLBACK[key]
        if key in OPTIONAL and not path.exists():
            say(f"[cinn] {path} not found: the demo offers no 8x super-resolution")
            continue
        start = time.time()
        models[key] = load_model(app, path)
        say(f"[cinn] loaded {path} ({time.time() - start:.1f} s)")
    return models


def check_sampling(n, temperature, seed):
    """The page's numbers as (int n, float temperature, int seed), or an error."""
    try:
        n, temperature, seed = int(n), float(temperature), int(seed)
    except (TypeError, ValueError):
        raise DemoInputError("N, temperature and seed must be numbers.") from None
    if not 1 <= n <= MAX_SAMPLES:
        raise DemoInputError(f"N must be between 1 and {MAX_SAMPLES}, got {n}.")
    if not 0 <= temperature <= 2:
        raise DemoInputError(f"The temperature must be between 0 and 2, got {temperature:g}.")
    return n, temperature, seed


def _too_large(w, h, limit_key, what):
    limit, stated = LIMITS[limit_key]
    if w * h > limit:
        raise DemoInputError(
            f"The image is {w}x{h} pixels; {what} in this demo takes at most {stated} "
            f"({limit:,} pixels). Downscale or crop it first.")


def too_large_message(name, limit_key, what):
    """For a picture too large even to open (Pillow's decompression-bomb limit)."""
    limit, stated = LIMITS[limit_key]
    return (f"{name} is far too large; {what} in this demo takes at most {stated} "
            f"({limit:,} pixels). Downscale or crop it first.")


def read_upload(path, limit_key, what):
    """Read an uploaded file as uint8 RGB after checking its size from the
    header (so a huge image is refused before it is decoded). Returns
    ``(name, rgb)``."""
    if path is None or str(path) == "":
        raise DemoInputError("Upload an image first (or pick one of the examples).")
    path = Path(path)
    name = path.name
    try:
        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                w, h = im.size
    except ImportError:  # pragma: no cover - Pillow comes with the demo extra
        w = h = None
    except Image.DecompressionBombError:
        raise DemoInputError(too_large_message(name, limit_key, what)) from None
    except Exception:  # noqa: BLE001 - any decoder failure: not an image we can read
        raise DemoInputError(f"{name} is not a readable image (corrupt file or unsupported "
                             "format); upload a PNG, JPEG, BMP, TIFF or WebP picture.") from None
    if w is not None:
        _too_large(w, h, limit_key, what)
    from cinn.apps.common.images import read_image

    try:
        rgb = read_image(path, min_size=1)
    except CinnError as err:
        raise DemoInputError(str(err).replace(str(path), name)) from None
    _too_large(rgb.shape[1], rgb.shape[0], limit_key, what)
    if min(rgb.shape[:2]) < 2:
        raise DemoInputError(f"The image is {rgb.shape[1]}x{rgb.shape[0]} pixels; {what} "
                             "needs at least 2x2.")
    return Path(name).stem, rgb


@dataclass
class Result:
    """What one request gives: the N ``samples`` (uint8 (H, W, 3) each), the
    pictures shown beside them (``before``, ``after``: lists of (caption, image)),
    the per-pixel std across the samples (``std``, grey levels) and its heat map
    (``std_image``), and a ``grid`` of them all in one picture."""

    name: str
    samples: list
    std: np.ndarray
    std_image: np.ndarray
    before: list = field(default_factory=list)
    after: list = field(default_factory=list)
    grid: np.ndarray = None
    info: str = ""

    def gallery(self):
        """(caption, image) for every picture, in the order shown."""
        return (self.before + [(f"sample {k + 1}", s) for k, s in enumerate(self.samples)]
                + self.after)


def _finish(name, samples, before, after, info, float_samples=None):
    from cinn.apps.common.images import make_grid
    from cinn.apps.common.uncertainty import heat_map, scale_of, std_map

    std = std_map(samples if float_samples is None else float_samples)
    k = -(-MAP_MIN_SIDE // max(std.shape))  # small: bigger pixels, a legible colour bar
    std_image = heat_map(np.kron(std, np.ones((k, k), std.dtype)) if k > 1 else std)
    row = [im for _, im in before] + list(samples) + [im for _, im in after]
    grid = make_grid([row])
    info = (f"{info}; uncertainty map: per-pixel std across the {len(samples)} samples, "
            f"0 (black) to {scale_of(std):.1f} grey levels (yellow)")
    return Result(name, list(samples), std, std_image, before, after, grid, info)


def _noop(*_args, **_kwargs):
    return None


def colorize_job(model, path, n=4, temperature=COLOR_TEMPERATURE, seed=0, colour_draws=False,
                 progress=_noop):
    """N colourings of an uploaded photo: grey input | samples | original (if colour),
    sampled as ``cinn colorize`` does (``cinn.apps.colorization.defaults``:
    ``temperature`` for the flow's global latents, its local ones at 0.5).
    ``colour_draws``: each sample also gets a post-hoc global saturation and hue draw
    (the former default ranges, ``defaults.DRAW_SATURATION``/``DRAW_HUE``; off by
    default)."""
    from cinn.apps.colorization.infer import colorize, grey_of, has_global
    from cinn.apps.common.images import is_greyscale

    n, temperature, seed = check_sampling(n, temperature, seed)
    progress(0.05, desc="reading the image")
    name, rgb = read_upload(path, "colorization", "colorization")
    progress(0.2, desc=f"sampling {n} colourings")
    start = time.time()
    draws = {"saturation": DRAW_SATURATION, "hue": DRAW_HUE} if colour_draws else {}
    samples = colorize(model, rgb, n=n, temperature=temperature, seed=seed, **draws)
    progress(0.9, desc="uncertainty map")
    after = [] if is_greyscale(rgb) else [("original", rgb)]
    local = (f" (local latents at {DEFAULT_LOCAL_TEMPERATURE:g})" if has_global(model)
             else "")
    info = (f"{name}: {rgb.shape[1]}x{rgb.shape[0]}, {n} colourings at temperature "
            f"{temperature:g}{local}, seed {seed}, {'with' if colour_draws else 'without'} "
            f"global colour draws in {time.time() - start:.1f} s")
    return _finish(name, samples, [("grey input", grey_of(rgb))], after, info)


def superres_job(models, path, scale=4, n=4, temperature=SR_TEMPERATURE, seed=0,
                 progress=_noop):
    """N upscalings of an uploaded LR image: bicubic | samples | mean of the samples."""
    from cinn.apps.superres import infer

    n, temperature, seed = check_sampling(n, temperature, seed)
    scale = int(scale)
    key = f"superres{scale}"
    if key not in models:
        raise DemoInputError(f"No {scale}x model is loaded (see --weights-dir).")
    progress(0.05, desc="reading the image")
    name, lr = read_upload(path, key, f"{scale}x super-resolution")
    progress(0.2, desc=f"sampling {n} upscalings")
    start = time.time()
    hr = infer.upscale_float(models[key], lr, n, temperature, seed)
    progress(0.9, desc="uncertainty map")
    samples = infer.to_uint8(hr)
    mean = infer.to_uint8(hr.mean(axis=0))
    info = (f"{name}: {lr.shape[1]}x{lr.shape[0]} -> {samples.shape[2]}x{samples.shape[1]}, "
            f"{n} samples at temperature {temperature:g}, seed {seed} in "
            f"{time.time() - start:.1f} s")
    return _finish(f"{name}_x{scale}", samples, [("bicubic", infer.bicubic(lr, scale))],
                   [("mean of the samples", mean)], info, float_samples=hr)


def editor_parts(value):
    """An image editor's value (``{"background", "layers", "composite"}``, NumPy
    RGBA) -> (uint8 RGB image, bool brush mask), or (None, None) when empty."""
    if value is None:
        return None, None
    background = value.get("background") if isinstance(value, dict) else value
    if background is None:
        return None, None
    background = np.asarray(background)
    if background.ndim == 2:
        background = np.repeat(background[..., None], 3, axis=2)
    h, w = background.shape[:2]
    mask = np.zeros((h, w), bool)
    for layer in (value.get("layers") or []) if isinstance(value, dict) else []:
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[2] == 4:
            painted = layer[..., 3] > 0
        elif layer.ndim >= 2:
            painted = (layer.reshape(layer.shape[:2] + (-1,)) > 0).any(axis=-1)
        else:
            continue
        mh, mw = min(h, painted.shape[0]), min(w, painted.shape[1])
        mask[:mh, :mw] |= painted[:mh, :mw]
    rgb = background[..., :3]
    if rgb.dtype != np.uint8:
        rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb), mask


def inpaint_job(model, image, brush=None, box="", n=4, temperature=INPAINT_TEMPERATURE, seed=0,
                name="image", progress=_noop):
    """N completions of the hole (brush strokes and/or a box ``x,y,w,h``):
    masked input | completions."""
    from cinn.apps.inpainting.infer import InpaintingNotice, inpaint, masked_view
    from cinn.apps.inpainting.masks import box_mask, fit_box, parse_box

    n, temperature, seed = check_sampling(n, temperature, seed)
    progress(0.05, desc="reading the image and the mask")
    if image is None:
        raise DemoInputError("Upload an image first (or pick one of the examples), then "
                             "paint the hole.")
    rgb = np.asarray(image)
    h, w = rgb.shape[:2]
    _too_large(w, h, "inpainting", "inpainting")
    if min(h, w) < 2:
        raise DemoInputError(f"The image is {w}x{h} pixels; inpainting needs at least 2x2.")
    mask = np.zeros((h, w), bool) if brush is None else np.asarray(brush, bool)
    cut = None
    if box and str(box).strip():
        try:
            fitted, cut = fit_box(parse_box(str(box).strip(), (h, w)), (h, w))
        except CinnError as err:
            raise DemoInputError(str(err).replace("--box", "The box")) from None
        mask = mask | box_mask((h, w), fitted)
    if not mask.any():
        raise DemoInputError("The mask is empty: paint the hole with the brush (or give a "
                             "box x,y,w,h) before running.")
    progress(0.2, desc=f"sampling {n} completions")
    start = time.time()
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", InpaintingNotice)
        samples = inpaint(model, rgb, mask, n=n, temperature=temperature, seed=seed)
    progress(0.9, desc="uncertainty map")
    info = (f"{name}: {w}x{h} with {100 * mask.mean():.1f} % missing, {n} completions at "
            f"temperature {temperature:g}, seed {seed} in {time.time() - start:.1f} s"
            + (f" (note: {cut.replace('--box', 'the box')})" if cut else "")
            + "".join(f" (note: {note.message})" for note in notes))
    return _finish(name, samples, [("masked input", masked_view(rgb, mask))], [], info)
