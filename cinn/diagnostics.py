"""Posterior diagnostics: is a set of samples a calibrated posterior for the truth?

NumPy only (the optional plot uses matplotlib when importable, else Pillow).
Conventions, shared by every function:

* ``samples`` holds ``N`` samples per element along ``axis`` (default 0);
  ``truth`` has the shape of ``samples`` without that axis. Every element (pixel,
  channel, ...) is one forecast; scores are pooled over elements.
* **CRPS** (``crps``) is the ensemble CRPS ``E|X - y| - 1/2 E|X - X'|`` with
  the plain (biased, "V-statistic") spread term ``1/N^2 sum_ij |x_i - x_j|``,
  computed sort-based in ``O(N log N)``: for sorted ``x_(1..N)``,
  ``E|X - X'| = 2/N^2 sum_i (2i - N - 1) x_(i)``. With ``N = 1`` it is the
  absolute error (its mean the MAE). ``fair=True`` uses ``1/(N(N-1))`` instead,
  the unbiased estimate of the CRPS of the distribution the samples come from.
* **Rank** of the truth: the number of samples below it, ``0..N``; ties with
  samples are broken uniformly at random (seeded), so a calibrated ensemble has a
  uniform rank in ``0..N``, even with discrete values.
* **Coverage** of the central ``q``-interval is computed from the rank, so that its
  expected value for a calibrated ensemble is exact for any ``N`` and any
  distribution. The interval runs from order statistic ``a`` to ``b`` (1-based,
  fractional), ``a, b = clip((N+1)(1 -+ q)/2, 1, N)`` (the "Weibull" quantiles
  ``(1-q)/2`` and ``(1+q)/2``, kept within the samples' range); a fractional
  end ``k + f`` stands for ``x_(k)`` or ``x_(k+1)`` with weights ``1-f, f``. An
  element then counts ``|[a, b] & [r, r+1]|`` (rank ``r``; 1 or 0 when ``a``
  and ``b`` are whole), and a calibrated ensemble covers exactly
  ``expected_coverage(q, N) = (b - a)/(N + 1)``: ``q`` wherever no end is
  clipped, at most ``(N-1)/(N+1)``, the coverage of ``[min, max]``.
* ``coverage_gap`` is the mean of ``observed - expected`` over the levels:
  negative when the samples are too narrow (over-confident), positive when too
  wide (under-confident); ``calibration_error`` is the median of
  ``|observed - expected|`` (Ardizzone et al. 2019; BayesFlow).
"""
import dataclasses

import numpy as np

LEVELS = tuple(np.round(np.arange(1, 10) / 10, 2))


def _split(samples, truth, axis):
    """``samples`` as ``(N, M)`` float64 and ``truth`` as ``(M,)``; ValueError
    naming the expected shape."""
    x = np.asarray(samples, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("samples must have a sample axis, got a scalar")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for samples of shape {x.shape}")
    x = np.moveaxis(x, axis, 0)
    if y.shape != x.shape[1:]:
        raise ValueError(f"truth must have shape {x.shape[1:]} (samples' shape "
                         f"{np.moveaxis(x, 0, axis).shape} without axis {axis}), "
                         f"got {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("samples must hold at least one sample along the sample axis")
    return x.reshape(x.shape[0], -1), y.reshape(-1)


def crps(samples, truth, axis=0, fair=False):
    """Ensemble CRPS per element: ``truth.shape``. ``samples``: ``truth.shape``
    with ``N`` inserted at ``axis``. ``fair=True`` (needs ``N >= 2``) uses the
    unbiased spread term ``1/(N(N-1))`` rather than ``1/N^2``."""
    x, y = _split(samples, truth, axis)
    n = x.shape[0]
    if fair and n < 2:
        raise ValueError("crps(fair=True) needs at least 2 samples per element")
    weights = (2 * np.arange(1, n + 1) - n - 1)[:, None]
    spread = 2.0 / n ** 2 * np.sum(weights * np.sort(x, axis=0), axis=0)  # E|X - X'|
    if fair:
        spread *= n / (n - 1)
    out = np.mean(np.abs(x - y), axis=0) - 0.5 * spread
    return out.reshape(np.shape(truth))


def _ranks(x, y, seed):
    """Rank of each truth among its samples, ``(M,)`` ints in ``0..N``, ties
    broken at random. ``x``: ``(N, M)``, ``y``: ``(M,)``."""
    below = np.sum(x < y, axis=0)
    ties = np.sum(x == y, axis=0)
    return below + np.random.default_rng(seed).integers(0, ties + 1)


def truth_ranks(samples, truth, axis=0, seed=0):
    """Rank of the truth among the ``N`` samples (``0..N``), ``truth.shape``."""
    x, y = _split(samples, truth, axis)
    return _ranks(x, y, seed).reshape(np.shape(truth))


def rank_histogram(samples, truth, axis=0, seed=0):
    """Counts of the truth's rank, ``(N + 1,)`` ints (ties broken at random with
    ``seed``). Calibrated: uniform, each bin ``counts.sum() / (N + 1)``; divide
    by ``counts.sum()`` for frequencies. Over-confident samples give a U shape,
    under-confident ones a hump."""
    x, y = _split(samples, truth, axis)
    return np.bincount(_ranks(x, y, seed), minlength=x.shape[0] + 1)


def _ends(levels, n):
    """The fractional 1-based order statistics ``(a, b)`` of the central intervals."""
    q = np.asarray(levels, dtype=np.float64)
    if q.ndim != 1 or np.any((q < 0) | (q > 1)):
        raise ValueError(f"levels must be a 1-D sequence in [0, 1], got {levels!r}")
    return (np.clip((n + 1) * (1 - q) / 2, 1, n), np.clip((n + 1) * (1 + q) / 2, 1, n))


def expected_coverage(levels, n):
    """What a calibrated ``n``-sample ensemble covers with each central interval
    (``(L,)``): ``levels`` where no end is clipped, at most ``(n-1)/(n+1)``."""
    a, b = _ends(levels, n)
    return (b - a) / (n + 1)


def _coverage(ranks, n, levels):
    """Observed coverage per level, ``(L,)``, from ranks ``(M,)``."""
    a, b = _ends(levels, n)
    r = ranks[None, :]
    inside = np.minimum(b[:, None], r + 1) - np.maximum(a[:, None], r)
    return np.mean(np.clip(inside, 0, None), axis=1)


def interval_coverage(samples, truth, levels=LEVELS, axis=0, seed=0):
    """Observed coverage of each central interval, ``(L,)``; compare with
    ``expected_coverage(levels, N)`` (see the module docstring)."""
    x, y = _split(samples, truth, axis)
    return _coverage(_ranks(x, y, seed), x.shape[0], levels)


def range_coverage(samples, truth, axis=0, seed=0):
    """Fraction of elements whose truth lies between the smallest and the largest
    of their samples: rank ``1..N-1``, ties with samples broken at random as for
    the rank, so that a calibrated ``N``-ensemble covers ``(N-1)/(N+1)`` also
    with discrete values (8-bit pixels, values clipped to a range), where
    counting ``min <= truth <= max`` would count every tie as covered."""
    x, y = _split(samples, truth, axis)
    r = _ranks(x, y, seed)
    return float(np.mean((r >= 1) & (r <= x.shape[0] - 1)))


def calibration_error(samples, truth, levels=LEVELS, axis=0, seed=0):
    """Median over ``levels`` of ``|observed - expected coverage|``."""
    x, y = _split(samples, truth, axis)
    gap = _coverage(_ranks(x, y, seed), x.shape[0], levels) - expected_coverage(levels, x.shape[0])
    return float(np.median(np.abs(gap)))


def coverage_gap(samples, truth, levels=LEVELS, axis=0, seed=0):
    """Mean over ``levels`` of ``observed - expected coverage``: negative for
    over-confident (too narrow) samples, positive for under-confident ones."""
    x, y = _split(samples, truth, axis)
    gap = _coverage(_ranks(x, y, seed), x.shape[0], levels) - expected_coverage(levels, x.shape[0])
    return float(np.mean(gap))


def bootstrap_ci(values, stat=np.mean, n_boot=2000, level=0.95, seed=0):
    """Percentile bootstrap over the first axis of ``values`` (images):
    ``(estimate, low, high)``, with ``estimate = stat(values)`` and the bounds the
    ``(1 -+ level)/2`` quantiles of ``stat`` on ``n_boot`` resamples."""
    v = np.asarray(values)
    if v.ndim == 0 or len(v) == 0:
        raise ValueError(f"values must have shape (images, ...) with images >= 1, got {v.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    idx = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))
    # the mean (the common case) in one array operation, up to 2^24 resampled values
    # (128 MiB in float64); larger inputs and other statistics one resample at a time
    if stat is np.mean and n_boot * v.size <= 1 << 24:
        boots = v[idx].reshape(n_boot, -1).mean(axis=1, dtype=np.float64)
    else:
        boots = np.array([stat(v[i]) for i in idx], dtype=np.float64)
    low, high = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(stat(v)), float(low), float(high)


@dataclasses.dataclass(frozen=True)
class PosteriorSummary:
    """``per_image``: metric -> ``(images,)``; ``intervals``: metric ->
    ``(estimate, low, high)`` (mean over images, bootstrap interval). ``levels``,
    ``expected`` and ``observed`` (means over images) make the coverage curve;
    ``rank_hist`` pools all elements (``None`` if ``N`` differs between images)."""
    per_image: dict
    intervals: dict
    levels: np.ndarray
    expected: np.ndarray
    observed: np.ndarray
    rank_hist: np.ndarray = None

    def as_dict(self):
        """The intervals as ``{metric: {"mean", "low", "high"}}``, JSON-ready."""
        return {k: dict(zip(("mean", "low", "high"), v)) for k, v in self.intervals.items()}


def posterior_summary(samples, truth, levels=LEVELS, n_boot=2000, level=0.95, seed=0):
    """Per-image crps, range coverage, calibration error and coverage gap, with
    bootstrap intervals over images. ``samples``: ``(images, N, ...)`` with
    ``truth`` ``(images, ...)``, or lists of per-image ``(N, ...)`` and ``(...)``
    arrays (images may differ in size)."""
    if len(samples) != len(truth) or len(samples) == 0:
        raise ValueError(f"samples and truth must hold the same number (>= 1) of images, "
                         f"got {len(samples)} and {len(truth)}")
    rng = np.random.default_rng(seed)
    names = ("crps", "range_coverage", "calibration_error", "coverage_gap")
    per_image = {k: [] for k in names}
    observed, expected, hists = [], [], []
    for i, (s, t) in enumerate(zip(samples, truth)):
        try:
            x, y = _split(s, t, 0)
        except ValueError as e:
            raise ValueError(f"image {i}: {e}") from None
        n = x.shape[0]
        ranks = _ranks(x, y, rng)
        obs, exp = _coverage(ranks, n, levels), expected_coverage(levels, n)
        per_image["crps"].append(float(np.mean(crps(x, y))))
        per_image["range_coverage"].append(range_coverage(x, y))
        per_image["calibration_error"].append(float(np.median(np.abs(obs - exp))))
        per_image["coverage_gap"].append(float(np.mean(obs - exp)))
        observed.append(obs)
        expected.append(exp)
        hists.append(np.bincount(ranks, minlength=n + 1))
    per_image = {k: np.array(v) for k, v in per_image.items()}
    intervals = {k: bootstrap_ci(v, np.mean, n_boot, level, seed) for k, v in per_image.items()}
    same_n = len({len(h) for h in hists}) == 1
    return PosteriorSummary(per_image, intervals, np.asarray(levels, dtype=np.float64),
                            np.mean(expected, axis=0), np.mean(observed, axis=0),
                            np.sum(hists, axis=0) if same_n else None)


def calibration_plot(coverage_levels, observed, rank_hist, path, title=None,
                     size=(800, 360), backend=None):
    """Write a PNG of ``size`` pixels: observed vs expected coverage (``(L,)``
    each; diagonal for reference) on the left, the rank histogram (``(N+1,)``
    counts, shown as frequencies with the uniform line) on the right. ``backend``:
    ``"matplotlib"``, ``"pillow"`` or ``None`` (matplotlib if importable).
    Returns ``path``."""
    x = np.asarray(coverage_levels, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    h = np.asarray(rank_hist, dtype=np.float64)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"observed must have shape {x.shape} like coverage_levels, got {y.shape}")
    if h.ndim != 1 or len(h) < 2 or h.sum() <= 0:
        raise ValueError(f"rank_hist must be (N+1,) counts with N >= 1, got shape {h.shape}")
    if backend is None:
        try:
            import matplotlib  # noqa: F401
            backend = "matplotlib"
        except ImportError:
            backend = "pillow"
    draw = {"matplotlib": _plot_matplotlib, "pillow": _plot_pillow}.get(backend)
    if draw is None:
        raise ValueError(f"backend must be 'matplotlib', 'pillow' or None, got {backend!r}")
    draw(x, y, h / h.sum(), str(path), title, size)
    return path


def _plot_matplotlib(x, y, freq, path, title, size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot([0, 1], [0, 1], color="0.6", lw=1)
    left.plot(x, y, "o-", color="tab:blue", ms=4)
    left.set(xlim=(0, 1), ylim=(0, 1), xlabel="expected coverage", ylabel="observed coverage")
    right.bar(np.arange(len(freq)), freq, width=0.9, color="tab:blue")
    right.axhline(1 / len(freq), color="tab:red", lw=1)
    right.set(xlabel="rank of truth", ylabel="frequency")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_pillow(x, y, freq, path, title, size):
    from PIL import Image, ImageDraw, ImageFont
    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1: the bitmap font
        font = ImageFont.load_default()
    w, h = size
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    if title:
        _text(d, (w / 2, 4), str(title), font, "ma")
    top, bottom = 44, h - 40
    ymax = 1.1 * max(freq.max(), 1 / len(freq))
    panels = (("observed vs expected coverage", 1.0), ("rank histogram (frequency)", ymax))
    boxes = []
    for k, (label, ytop) in enumerate(panels):
        x0, x1 = k * w // 2 + 48, (k + 1) * w // 2 - 16
        boxes.append((x0, x1))
        d.rectangle((x0, top, x1, bottom), outline="black")
        _text(d, ((x0 + x1) / 2, top - 16), label, font, "ma")
        for t in np.linspace(0, ytop, 5):
            py = bottom - t / ytop * (bottom - top)
            d.line((x0 - 4, py, x0, py), fill="black")
            _text(d, (x0 - 6, py), f"{t:.3g}", font, "rm")
    (a0, a1), (b0, b1) = boxes
    sx = lambda v: a0 + v * (a1 - a0)  # noqa: E731
    sy = lambda v: bottom - np.clip(v, 0, 1) * (bottom - top)  # noqa: E731
    for t in np.linspace(0, 1, 5):
        d.line((sx(t), bottom, sx(t), bottom + 4), fill="black")
        _text(d, (sx(t), bottom + 6), f"{t:.2f}", font, "ma")
    _text(d, ((a0 + a1) / 2, h - 4), "expected coverage", font, "md")
    d.line((sx(0), sy(0), sx(1), sy(1)), fill=(150, 150, 150), width=1)
    pts = [(sx(u), sy(v)) for u, v in zip(x, y)]
    if len(pts) > 1:
        d.line(pts, fill=(31, 119, 180), width=2)
    for px, py in pts:
        d.ellipse((px - 3, py - 3, px + 3, py + 3), fill=(31, 119, 180))
    n1 = len(freq)
    bw = (b1 - b0) / n1
    for i, f in enumerate(freq):
        d.rectangle((b0 + i * bw + bw * 0.05, bottom - f / ymax * (bottom - top),
                     b0 + (i + 1) * bw - bw * 0.05, bottom), fill=(31, 119, 180))
    for i in sorted({0, (n1 - 1) // 2, n1 - 1}):
        _text(d, (b0 + (i + 0.5) * bw, bottom + 6), str(i), font, "ma")
    _text(d, ((b0 + b1) / 2, h - 4), "rank of truth", font, "md")
    uy = bottom - (1 / n1) / ymax * (bottom - top)
    d.line((b0, uy, b1, uy), fill=(214, 39, 40), width=2)
    img.save(path, format="PNG")


def _text(d, xy, s, font, anchor):
    """Black text at ``xy``; ``anchor``: horizontal l/m/r, vertical a(top)/m/d(bottom)
    (placed from its box, so bitmap fonts of old Pillow work too)."""
    x0, y0, x1, y1 = d.textbbox((0, 0), s, font=font)
    x = xy[0] - {"l": 0, "m": (x1 + x0) / 2, "r": x1}[anchor[0]]
    y = xy[1] - {"a": y0, "m": (y1 + y0) / 2, "d": y1}[anchor[1]]
    d.text((x, y), s, fill="black", font=font)
