"""Very large images in overlapping strips: condition features and decoding.

A conditioning network made of convolutions sees a bounded neighbourhood of each
pixel, so its features can be computed strip by strip (full width, about ``STRIP_PIXELS`` pixels
plus a margin of ``HALO`` rows above and below, cropped away) with a fraction of
the memory of one pass over the whole image; the features are the same up to
float rounding (``tests/test_robustness.py``). Networks that look at the whole
image (``UNetConditionNet``'s global context) are never split: for them, and for
images up to ``TILE_PIXELS``, ``strip_features`` returns ``None`` and the model
computes the features in one pass.
"""
import numpy as np
from keras import ops

from cinn import ConditionalINN
from cinn.strips import receptive_radius, strip_bounds

#: conditioning networks whose receptive field is local (well inside ``HALO``)
LOCAL_NETS = ("ConditionNet", "LREncoder")
#: conditions with more pixels than this are processed in strips
TILE_PIXELS = 2 ** 19
#: least strip height and margin, in condition pixels (multiples of every level's stride)
ROWS, HALO = 64, 64
#: pixels of one strip, margins left out: memory follows the strip (a 3x3 convolution
#: of oneDNN may take a scratch buffer of 9 x its input channels per pixel)
STRIP_PIXELS = 2 ** 17


def strip_features(model, c, rows=None, halo=HALO, min_pixels=TILE_PIXELS):
    """``model.condition_features(c)`` for one condition ``c`` (1, H, W, C) computed
    in strips, as NumPy arrays; ``None`` when the image is small or the model's
    conditioning network is not known to be local. ``rows``: rows per strip (default:
    about ``STRIP_PIXELS`` pixels, at least ``ROWS``, a multiple of 64)."""
    c = np.asarray(c)
    h, w = c.shape[1], c.shape[2]
    if rows is None:
        rows = max(ROWS, -(-(STRIP_PIXELS // w) // 64) * 64)
    if h * w <= min_pixels or type(model.cond_net).__name__ not in LOCAL_NETS or h <= rows:
        return None
    parts = None
    for a, y0, y1, b in strip_bounds(h, rows, halo, multiple=1):
        feats = model.condition_features(ops.convert_to_tensor(c[:, a:b],
                                                               model.compute_dtype))
        if parts is None:
            parts = [[] for _ in feats]
        for part, f in zip(parts, feats):
            if f is None:
                continue
            ratio = f.shape[1] / (b - a)
            part.append(np.asarray(ops.convert_to_numpy(f))[
                :, round((y0 - a) * ratio):round((y1 - a) * ratio)])
    return [np.concatenate(p, axis=1) if p else None for p in parts]


def decode_strips(model, c, min_pixels=TILE_PIXELS, strip_pixels=STRIP_PIXELS):
    """``strips=(rows, halo)`` for ``model.sample_chunks`` when a sample of condition
    ``c`` (1, H, W, C) has more than ``min_pixels`` pixels: strips of about
    ``strip_pixels`` pixels with a halo of the flow's receptive radius
    (``cinn.strips``); ``None`` for smaller images (one pass) and for models that
    are not flows (the colorization regressor)."""
    if not isinstance(model, ConditionalINN):
        return None
    h, w = (int(d) for d in model.x_shape_for(np.asarray(c))[:2])
    if h * w <= min_pixels:
        return None
    halo = receptive_radius(model)
    rows = max(2 * halo, strip_pixels // w, 2 ** model.num_down)
    return None if rows + halo >= h else (rows, halo)
