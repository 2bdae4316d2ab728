"""Very large images in overlapping strips: condition features and decoding.

A conditioning network made of convolutions sees a bounded neighbourhood of each
pixel, so its features can be computed strip by strip (full width, about ``STRIP_PIXELS`` pixels
plus a margin of ``HALO`` rows above and below, cropped away) with a fraction of
the memory of one pass over the whole image; the features are the same up to
float rounding (``tests/test_robustness.py``). Networks that look at the whole
image (``UNetConditionNet``'s global context) are not split by ``strip_features``:
for them, and for images up to ``TILE_PIXELS``, it returns ``None`` and the model
computes the features in one pass.

``unet_in_strips`` runs a ``UNetConditionNet`` in strips all the same, in two
passes: the global mean of its bottleneck (the one input that sees the whole
image), summed strip by strip, then every strip's outputs with that mean; the
result is the one pass's up to float rounding (the inpainting app's learned fill
on photos of many megapixels: memory for a strip, not for the photo).
"""
import math

import numpy as np
from keras import ops

from cinn import ConditionalINN
from cinn.conditioning import upsample_bilinear_2x
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
    out = _Pasted(h)
    for a, y0, y1, b in strip_bounds(h, rows, halo, multiple=1):
        out.paste(model.condition_features(ops.convert_to_tensor(c[:, a:b],
                                                                 model.compute_dtype)),
                  a, y0, y1, b)
    return out.arrays


class _Pasted:
    """Whole-height NumPy arrays filled strip by strip (``paste``): one copy of the
    result in memory, not the strips' and their concatenation's."""

    def __init__(self, height):
        self.height, self.arrays, self.ratios = int(height), None, None

    def paste(self, parts, a, y0, y1, b):
        """Copy the rows of strip ``[y0, y1)`` of each of ``parts`` (maps computed on
        the window ``[a, b)``; ``None`` parts stay ``None``). The first strip starts at
        row 0 and, unless it is the only one, ends on a whole row of every map: it
        gives each map's rows per input row."""
        if self.arrays is None:
            self.ratios = [None if f is None else f.shape[1] / (b - a) for f in parts]
            self.arrays = [None if f is None else np.empty(
                (f.shape[0], _rows_at(self.height, r)) + tuple(f.shape[2:]),
                ops.convert_to_numpy(f[:, :1, :1]).dtype) for f, r in zip(parts, self.ratios)]
        for whole, r, f in zip(self.arrays, self.ratios, parts):
            if f is None:
                continue
            lo, hi = _rows_at(y0, r), _rows_at(y1, r)
            start = lo - _rows_at(a, r)
            whole[:, lo:hi] = ops.convert_to_numpy(f[:, start:start + hi - lo])


def _rows_at(rows, ratio):
    """Rows of a map at ``ratio`` times the input's resolution, rounded up (as a
    stride-2 convolution with "same" padding rounds an odd size)."""
    return math.ceil(rows * ratio - 1e-9)


def unet_radius(net):
    """An upper bound, in rows of its input, on how far an output of ``net`` (a
    ``UNetConditionNet``) reaches apart from its global context: every 3x3
    convolution of the encoder and decoder in one chain, each bilinear upsampling
    one pixel of its coarser grid, plus one cell of the coarsest grid for where the
    stride-2 grids fall; a multiple of that cell."""
    depth, blocks = len(net.widths) - 1, int(net.blocks)
    radius = 1 + 2 * blocks                                   # stem, blocks at depth 0
    for d in range(1, depth + 1):
        radius += 2 ** (d - 1) + 2 * blocks * 2 ** d          # stride-2 conv, blocks
    for d in range(depth - 1, net.finest - 1, -1):
        radius += 2 ** (d + 1) + 2 ** d                       # upsampling, decoder conv
    radius += 2 ** net.finest + 2 ** depth                    # heads, grid alignment
    cell = 2 ** depth
    return -(-radius // cell) * cell


def _unet_encode(net, x):
    h = net.stem(x)
    skips = []
    for d, blocks in enumerate(net.enc):
        if d:
            h = net.down[d - 1](h)
        for block in blocks:
            h = block(h)
        skips.append(h)
    return skips


def _unet_decode(net, skips, context):
    h = skips[-1] if context is None else skips[-1] + context[:, None, None, :]
    feats = {len(skips) - 1: h}
    for d in range(len(skips) - 2, net.finest - 1, -1):
        skip = skips[d]
        up = upsample_bilinear_2x(h)[:, :ops.shape(skip)[1], :ops.shape(skip)[2]]
        h = net.dec[d](ops.concatenate([up, skip], axis=-1))
        feats[d] = h
    return [None if head is None else head(feats[-s]) for s, head in zip(net.scales, net.heads)]


def unet_in_strips(net, x, rows=None, halo=None):
    """``net(x)`` of a ``UNetConditionNet`` for one input ``x`` (1, H, W, C), computed
    in strips of ``rows`` rows (default: about ``2 * STRIP_PIXELS`` pixels) with ``halo``
    rows of context (default ``unet_radius(net)``), as NumPy arrays: with a global
    context, a first pass sums the bottleneck strip by strip for its mean over the
    whole input, and the second pass adds the context of that mean in every strip.
    Equal to one pass up to float rounding; memory for one strip."""
    x = np.asarray(x)
    h, w = x.shape[1], x.shape[2]
    depth = len(net.widths) - 1
    cell = 2 ** depth
    halo = unet_radius(net) if halo is None else int(halo)
    if rows is None:
        rows = max(cell, 2 * STRIP_PIXELS // max(w, 1))
    # A stride-2 convolution with "same" padding pads an odd input above, an even one
    # not: windows as long as the input modulo the coarsest cell see the same grids.
    bounds = [(a, y0, y1, b if b == h else min(h, b + h % cell))
              for a, y0, y1, b in strip_bounds(h, rows, halo, multiple=cell)]
    dtype = net.compute_dtype
    context = None
    if net.context is not None:
        total, count = 0.0, 0
        for a, y0, y1, b in bounds:
            bottom = _unet_encode(net, ops.convert_to_tensor(x[:, a:b], dtype))[-1]
            lo, hi = (y0 - a) // cell, -(-(y1 - a) // cell)
            inner = ops.convert_to_numpy(bottom[:, lo:hi]).astype(np.float64)
            total = total + inner.sum(axis=(1, 2))
            count += inner.shape[1] * inner.shape[2]
        context = net.context(ops.convert_to_tensor(total / count, dtype))
    out = _Pasted(h)
    for a, y0, y1, b in bounds:
        out.paste(_unet_decode(net, _unet_encode(net, ops.convert_to_tensor(x[:, a:b], dtype)),
                               context), a, y0, y1, b)
    return out.arrays


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
