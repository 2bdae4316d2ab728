"""Uncertainty maps: where the N samples of one input disagree.

``std_map(samples)`` is the per-pixel standard deviation across the samples
(RGB, in grey levels 0-255; the root mean square over the three channels), and
``heat_map(std)`` draws it as a colour picture (black = all samples agree,
through purple and orange to pale yellow = most spread), optionally with a
colour bar that states the scale. ``uncertainty_image(samples)`` does both.
Used by the ``--std-map`` option of the sampling commands, by ``cinn demo`` and
by the training-time sample grids.
"""
import cv2
import numpy as np

#: below this width a heat map gets no colour bar (the numbers would not fit)
LEGEND_MIN_WIDTH = 96


def std_map(samples):
    """Per-pixel standard deviation across ``samples`` (n, H, W, C) (uint8 or
    float in 0-255 units): float32 (H, W), the root mean square of the
    channels' standard deviations. One sample gives zeros."""
    s = np.asarray(samples, np.float64)
    if s.ndim == 3:
        s = s[..., None]
    if s.ndim != 4 or s.shape[0] < 1:
        raise ValueError(f"samples must have shape (n, H, W, C), got {s.shape}")
    return np.sqrt(s.var(axis=0).mean(axis=-1)).astype(np.float32)


def _colour(values01):
    """(H, W) in [0, 1] -> uint8 RGB through the inferno colour map."""
    grey = np.clip(np.rint(np.asarray(values01, np.float64) * 255.0), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def scale_of(std):
    """The value drawn brightest: the largest standard deviation (0 when all
    samples are equal)."""
    std = np.asarray(std, np.float64)
    return float(std.max()) if std.size else 0.0


def heat_map(std, vmax=None, legend=True):
    """Draw ``std`` (H, W) as uint8 RGB (H, W, 3): 0 black, ``vmax`` (default:
    the map's maximum) pale yellow. With ``legend`` and a map at least
    ``LEGEND_MIN_WIDTH`` pixels wide, a colour bar labelled ``0`` and ``vmax``
    (grey levels) is added below, so the picture is (H + 28, W, 3)."""
    std = np.asarray(std, np.float32)
    if std.ndim != 2:
        raise ValueError(f"a std map has shape (H, W), got {std.shape}")
    vmax = scale_of(std) if vmax is None else float(vmax)
    img = _colour(std / vmax if vmax > 0 else np.zeros_like(std))
    if not legend or std.shape[1] < LEGEND_MIN_WIDTH:
        return img
    return np.concatenate([img, colour_bar(std.shape[1], vmax)], axis=0)


def colour_bar(width, vmax, height=28):
    """A white strip with the colour gradient and its end values (uint8 RGB)."""
    bar = np.full((height, width, 3), 255, np.uint8)
    bar[3:11, 4:width - 4] = _colour(np.tile(np.linspace(0, 1, width - 8), (8, 1)))
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    right = "all equal" if vmax <= 0 else f"{vmax:.1f} std"
    (tw, _), _ = cv2.getTextSize(right, font, size, 1)
    cv2.putText(bar, "0", (4, height - 5), font, size, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(bar, right, (max(16, width - 4 - tw), height - 5), font, size, (0, 0, 0), 1,
                cv2.LINE_AA)
    return bar


def uncertainty_image(samples, vmax=None, legend=True):
    """``heat_map(std_map(samples))``: the samples' uncertainty as a picture."""
    return heat_map(std_map(samples), vmax=vmax, legend=legend)


def sample_rows(first, samples, values=None):
    """One picture of many inputs (the training-time sample grids): per input a
    row ``first`` | its N samples | their uncertainty map, all maps on one colour
    scale (the largest std of the picture) so rows compare.

    ``first``: (B, H', W', 3) uint8 (the input as the app shows it), ``samples``:
    (B, n, H, W, 3) uint8, ``values``: the same samples as floats in 0-255 for the
    std (default: ``samples``). Returns uint8 (height, width, 3)."""
    from cinn.apps.common.images import make_grid

    samples = np.asarray(samples)
    values = samples if values is None else np.asarray(values)
    stds = [std_map(v) for v in values]
    vmax = max(scale_of(s) for s in stds)
    rows = [[np.asarray(f)] + list(s) + [heat_map(std, vmax=vmax, legend=False)]
            for f, s, std in zip(first, samples, stds)]
    return make_grid(rows)
