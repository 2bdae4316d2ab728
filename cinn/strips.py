"""Decoding very large images in overlapping strips of rows.

Every block of an image flow is local: ActNorm and the 1x1 convolutions act per
pixel, and a coupling's inverse reads a bounded neighbourhood through its
convolutional subnets. So the rows ``[y0, y1)`` of a decoded sample depend only
on the latents and condition features of the rows ``[y0 - r, y1 + r)``, ``r`` the
inverse's receptive radius. ``decode_in_strips`` decodes strips of ``rows`` rows
with ``halo`` rows of context above and below (cropped away), so that memory
follows the strip, not the image; with ``halo >= r`` the result is the one-pass
decode's up to float rounding (``tests/test_strips.py``). Strip edges are
multiples of the flow's ``multiple`` (``2 ** levels``), so that every level's
latents and features are cut at whole rows.

Not for flows with a global operation in the inverse (a dense subnet, a
global-pooling subnet); condition features may be global: they are computed
once, before the strips.
"""
from keras import ops


def receptive_radius(model):
    """An upper bound, in rows of x, on how far the inverse of ``model``'s flow
    reaches: per block, the sum of the radii of its convolution kernels (every
    rank-4 variable, ``(k - 1) // 2``; as if they were all in one chain), times
    the downsampling of its level; with a ``mean_net``, at least its own
    ``receptive_radius()``."""
    factor, radius = 1, 0
    for lv, layers, split in zip(model.levels, model.flow_layers, model.split_layers):
        if lv["downsample"]:
            factor *= 2
        for layer in list(layers) + [split]:
            if layer is None:
                continue
            for v in layer.variables:
                if len(v.shape) == 4:
                    radius += (max(int(v.shape[0]), int(v.shape[1])) - 1) // 2 * factor
    mean_net = getattr(model, "mean_net", None)
    if mean_net is not None:  # added after the flow: a branch beside it, not in the chain
        if not hasattr(mean_net, "receptive_radius"):
            raise ValueError(f"{type(mean_net).__name__} (the model's mean_net) has no "
                             "receptive_radius(): its reach is unknown")
        radius = max(radius, int(mean_net.receptive_radius()))
    return radius


def strip_bounds(height, rows, halo, multiple):
    """``[(a, y0, y1, b), ...]``: the strips ``[y0, y1)`` covering ``height`` rows and
    their windows ``[a, b)`` with up to ``halo`` rows of context on each side, every
    edge a multiple of ``multiple`` (except ``height`` itself)."""
    def up(v):
        return -(-int(v) // multiple) * multiple

    rows, halo = max(multiple, up(rows)), up(halo)
    out = []
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        out.append((max(0, y0 - halo), y0, y1, min(height, y1 + halo)))
    return out


def _rows(t, a, b, height):
    """Rows ``[a, b)`` of ``height`` of the tensor ``t`` (1, h, w, C) whose ``h`` is
    ``height`` times a power of two (a level's latents or features)."""
    if t is None:
        return None
    h = int(t.shape[1])
    return t[:, a * h // height:b * h // height]


def decode_in_strips(decode, parts, feats, height, rows, halo, multiple):
    """``decode(parts, feats)`` of one sample of ``height`` rows, strip by strip.

    ``parts``: the sample's latents, one (1, h_l, w_l, C_l) tensor per level
    (``ConditionalINN._latent_parts``); ``feats``: the per-level condition
    features (or ``None``s); ``decode``: the one-pass decode (e.g. compiled).
    """
    bounds = strip_bounds(int(height), rows, halo, multiple)
    if len(bounds) == 1:
        return decode(parts, feats)
    pieces = []
    for a, y0, y1, b in bounds:
        x = decode([_rows(p, a, b, height) for p in parts],
                   [_rows(f, a, b, height) for f in feats])
        pieces.append(x[:, y0 - a:y1 - a])
    return ops.concatenate(pieces, axis=1)
