"""The posterior report of ``cinn evaluate APP``: one way for every app to score its
samples and its deterministic baselines (``cinn.diagnostics``).

Every method gets, per image, from ``N`` uint8 samples ``(N, H, W, 3)`` against the
uint8 ground truth ``(H, W, 3)``, in the image's value range (0-255 grey levels per
RGB channel; every pixel and channel of the scored region is one forecast):

* ``crps``: the ensemble CRPS (``cinn.diagnostics.crps``), averaged over the
  elements; for one deterministic answer (``N = 1``) it is the mean absolute error;
* ``crps_fair``: the fair CRPS (``crps(..., fair=True)``), the unbiased estimate of
  the CRPS of the distribution the ``N`` samples are drawn from, i.e. of ``N -> inf``
  samples (a perfect Gaussian posterior scores 0.707x the MAE of its median here,
  0.795x by ``crps`` at ``N = 8``); a deterministic answer is a point mass, whose CRPS
  is its mean absolute error;
* ``range_coverage``: the fraction of elements inside ``[min, max]`` of the samples
  (ties broken at random), ``(N-1)/(N+1)`` for a calibrated ensemble of ``N`` (0.778
  for ``N = 8``);
* ``calibration_error`` (median over the central intervals at q = 0.1 ... 0.9 of
  ``|observed - expected coverage|``) and ``coverage_gap`` (their mean of
  ``observed - expected``: negative when the samples are too narrow, positive when too
  wide); not defined for ``N = 1``;
* ``psnr_best``/``ssim_best`` (best of the ``N`` per metric: an oracle that rewards any
  spread), ``psnr_single``/``ssim_single`` (the average over the ``N`` samples: what one
  draw gives) and ``psnr_mean``/``ssim_mean`` (of the rounded mean of the samples), by
  the app's own ``quality(a, b) -> (psnr, ssim)``.

Each figure is reported as the mean over images with its 95 % percentile bootstrap
interval over images (``cinn.diagnostics.bootstrap_ci``); the coverage curve (mean over
images) and the pooled rank histogram make the calibration plot.
"""
import dataclasses
from pathlib import Path

import numpy as np

from cinn import diagnostics as dg

#: the scalar metrics of every image, in the tables' order
METRICS = ("crps", "crps_fair", "range_coverage", "calibration_error", "coverage_gap", "psnr_best",
           "psnr_single", "psnr_mean", "ssim_best", "ssim_single", "ssim_mean")
#: metrics that need ``N >= 2``
SPREAD_METRICS = ("range_coverage", "calibration_error", "coverage_gap")


def calibrated_coverage(n):
    """The range coverage of a calibrated ``n``-sample ensemble, ``(n-1)/(n+1)``."""
    return (n - 1) / (n + 1)


def image_scores(samples, truth, quality, where=None, levels=dg.LEVELS, seed=0):
    """Scores of one image (a dict of ``METRICS``, ``None`` where undefined, plus
    ``observed`` coverage per level and ``rank_hist`` for ``N >= 2``).

    ``samples``: ``(N, H, W, C)`` uint8 (or float in 0-255); ``truth``: ``(H, W, C)``;
    ``where``: optional boolean ``(H, W)``, the pixels the distribution metrics score
    (inpainting: the hole); ``quality(sample, truth) -> (psnr, ssim)`` on whole uint8
    images (the app restricts them itself)."""
    samples = np.asarray(samples)
    truth = np.asarray(truth)
    if samples.ndim != truth.ndim + 1 or samples.shape[1:] != truth.shape:
        raise ValueError(f"samples must be (N,) + {truth.shape}, got {samples.shape}")
    n = samples.shape[0]
    x, y = (samples[:, where], truth[where]) if where is not None else (samples, truth)
    x, y = x.reshape(n, -1), y.reshape(-1)
    out = {"crps": float(np.mean(dg.crps(x, y))), "n": n}
    out["crps_fair"] = float(np.mean(dg.crps(x, y, fair=True))) if n >= 2 else out["crps"]
    if n >= 2:
        observed = dg.interval_coverage(x, y, levels, seed=seed)
        gap = observed - dg.expected_coverage(levels, n)
        out.update(range_coverage=dg.range_coverage(x, y),
                   calibration_error=float(np.median(np.abs(gap))),
                   coverage_gap=float(np.mean(gap)), observed=observed,
                   rank_hist=dg.rank_histogram(x, y, seed=seed))
    else:
        out.update({k: None for k in SPREAD_METRICS})
    scores = [quality(s, truth) for s in samples]
    psnrs, ssims = [p for p, _ in scores], [q for _, q in scores]
    if n >= 2:
        mean = np.clip(np.rint(samples.astype(np.float64).mean(axis=0)), 0, 255)
        psnr_mean, ssim_mean = quality(mean.astype(samples.dtype), truth)
    else:
        psnr_mean, ssim_mean = psnrs[0], ssims[0]
    out.update(psnr_best=max(psnrs), ssim_best=max(ssims), psnr_single=float(np.mean(psnrs)),
               ssim_single=float(np.mean(ssims)), psnr_mean=psnr_mean, ssim_mean=ssim_mean)
    return out


@dataclasses.dataclass
class Method:
    """One row of the report: a name and the per-image scores of ``image_scores``."""
    name: str
    images: list = dataclasses.field(default_factory=list)

    @property
    def n(self):
        return self.images[0]["n"] if self.images else 0

    def summary(self, n_boot=2000, seed=0):
        """``{metric: (mean, low, high)}`` over images (95 % bootstrap); metrics that
        are undefined for this method (``N = 1``) are left out."""
        out = {}
        for k in METRICS:
            values = [r[k] for r in self.images]
            if values and all(v is not None for v in values):
                out[k] = dg.bootstrap_ci(np.asarray(values, np.float64), np.mean, n_boot,
                                         0.95, seed)
        return out

    def coverage_curve(self, levels=dg.LEVELS):
        """``(expected, observed, rank_hist)``: the curve averaged over images and the
        pooled rank histogram (``N >= 2``)."""
        expected = dg.expected_coverage(levels, self.n)
        observed = np.mean([r["observed"] for r in self.images], axis=0)
        return expected, observed, np.sum([r["rank_hist"] for r in self.images], axis=0)


class PosteriorReport:
    """The methods of one evaluation (an ordered dict ``key -> Method``)."""

    def __init__(self, quality, levels=dg.LEVELS, seed=0):
        self.quality, self.levels, self.seed = quality, levels, seed
        self.methods = {}

    def add(self, key, name, samples, truth, where=None, quality=None):
        """Score one image of method ``key`` (created on first use, named ``name``);
        ``quality`` overrides the report's for this image (e.g. a per-image mask)."""
        method = self.methods.setdefault(key, Method(name))
        seed = self.seed + len(method.images)
        method.images.append(image_scores(samples, truth, quality or self.quality, where,
                                          self.levels, seed))
        return method.images[-1]

    def summaries(self, n_boot=2000):
        return {k: m.summary(n_boot, self.seed) for k, m in self.methods.items()}

    def calibration_plot(self, key, path, title=None):
        """The calibration plot (PNG) of method ``key`` (``N >= 2``); returns ``path``."""
        _, observed, hist = self.methods[key].coverage_curve(self.levels)
        expected = dg.expected_coverage(self.levels, self.methods[key].n)
        return dg.calibration_plot(expected, observed, hist, path, title=title)

    def tables(self, keys=None, n_boot=2000):
        """Two Markdown tables (posterior; PSNR/SSIM), one row per method (``keys``,
        default all, in order), every figure ``mean [low, high]``."""
        keys = list(self.methods) if keys is None else keys
        return format_tables([(self.methods[k].name, self.methods[k].summary(n_boot, self.seed))
                              for k in keys])

    def merged(self, others):
        """A report holding the images of ``self`` and ``others`` (same methods):
        figures over all data sets together."""
        out = PosteriorReport(self.quality, self.levels, self.seed)
        for report in (self, *others):
            for k, m in report.methods.items():
                out.methods.setdefault(k, Method(m.name)).images.extend(m.images)
        return out

    def flow_sweep(self, n_boot=2000):
        """``[(T, summary)]`` of the flow's rows (``flow_key``), by temperature."""
        temps = sorted(float(k[len(FLOW):]) for k in self.methods if k.startswith(FLOW))
        return [(t, self.methods[flow_key(t)].summary(n_boot, self.seed)) for t in temps]

    def print(self, app, temperature, sweep, out, dataset=None, baselines=()):
        """Print the report of the flow at ``temperature`` and at T = 1 with the rows
        ``baselines`` (keys), then, with ``sweep``, every flow temperature and the
        calibrated one; write the calibration plots of the flow at ``temperature``
        and T = 1 to folder ``out`` (created) and print their paths."""
        temps = [float(temperature)] + ([1.0] if float(temperature) != 1.0 else [])
        keys = [flow_key(t) for t in temps] + [k for k in baselines if k in self.methods]
        print(self.tables(keys))
        n = self.methods[flow_key(temps[0])].n
        if sweep:
            print(f"\n# temperature sweep of the flow (N = {n})")
            print(format_sweep(self.flow_sweep(), n))
        if n < 2:
            return []
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for t in temps:
            what = f"{app}{' ' + dataset if dataset else ''}"
            paths.append(self.calibration_plot(
                flow_key(t), out / plot_name(app, t, dataset),
                title=f"{what}: N = {n} samples at T = {t:g}"))
            print(f"calibration plot: {paths[-1]}")
        return paths


def cell(ci, fmt="{:.2f}"):
    """``mean [low, high]`` of a bootstrap triple, ``—`` when undefined."""
    if ci is None:
        return "—"
    return f"{fmt.format(ci[0])} [{fmt.format(ci[1])}, {fmt.format(ci[2])}]"


POSTERIOR_COLUMNS = (("crps", "CRPS (0-255; MAE for one answer)", "{:.2f}"),
                     ("crps_fair", "fair CRPS (N -> inf)", "{:.2f}"),
                     ("range_coverage", "range coverage", "{:.3f}"),
                     ("calibration_error", "calibration error", "{:.3f}"),
                     ("coverage_gap", "coverage gap (- narrow, + wide)", "{:+.3f}"))
QUALITY_COLUMNS = (("psnr_best", "best-of-N PSNR", "{:.2f}"),
                   ("psnr_single", "single-sample PSNR", "{:.2f}"),
                   ("psnr_mean", "PSNR of the mean", "{:.2f}"),
                   ("ssim_best", "best-of-N SSIM", "{:.4f}"),
                   ("ssim_single", "single-sample SSIM", "{:.4f}"),
                   ("ssim_mean", "SSIM of the mean", "{:.4f}"))


def _table(rows, columns):
    lines = ["| method | " + " | ".join(c[1] for c in columns) + " |",
             "|" + " --- |" * (len(columns) + 1)]
    for name, s in rows:
        lines.append(f"| {name} | " + " | ".join(cell(s.get(k), fmt) for k, _, fmt in columns)
                     + " |")
    return "\n".join(lines)


def format_tables(rows):
    """``rows``: ``[(name, summary)]``; the posterior table, a blank line, the
    quality table."""
    return _table(rows, POSTERIOR_COLUMNS) + "\n\n" + _table(rows, QUALITY_COLUMNS)


def calibrated_temperature(temperatures, coverages, target):
    """The temperature where the range coverage reaches ``target``, linearly
    interpolated between the two swept temperatures around it (the first crossing in
    increasing temperature), or ``None`` when the sweep does not cross it."""
    pairs = sorted(zip((float(t) for t in temperatures), (float(c) for c in coverages)))
    for (t0, c0), (t1, c1) in zip(pairs, pairs[1:]):
        if (c0 - target) * (c1 - target) <= 0 and c0 != c1:
            return t0 + (target - c0) * (t1 - t0) / (c1 - c0)
    for t, c in pairs:
        if c == target:
            return t
    return None


def format_sweep(sweep, n):
    """``sweep``: ``[(T, summary)]`` of the flow at each temperature; a Markdown table
    and the line naming the calibrated temperature."""
    columns = (("range_coverage", "range coverage", "{:.3f}"), ("crps", "CRPS", "{:.2f}"),
               ("crps_fair", "fair CRPS", "{:.2f}"),
               ("calibration_error", "calibration error", "{:.3f}"),
               ("coverage_gap", "coverage gap", "{:+.3f}"),
               ("psnr_single", "single-sample PSNR", "{:.2f}"),
               ("psnr_best", "best-of-N PSNR", "{:.2f}"))
    lines = ["| T | " + " | ".join(c[1] for c in columns) + " |",
             "|" + " --- |" * (len(columns) + 1)]
    for t, s in sweep:
        lines.append(f"| {float(t):g} | " + " | ".join(cell(s.get(k), fmt)
                                                       for k, _, fmt in columns) + " |")
    target = calibrated_coverage(n)
    swept = [(t, s["range_coverage"][0]) for t, s in sweep if "range_coverage" in s]
    t_cal = calibrated_temperature([t for t, _ in swept], [c for _, c in swept], target)
    if t_cal is None and swept:
        (t_lo, c_lo), (t_hi, c_hi) = min(swept), max(swept)
        side = (f"above T = {t_hi:g} (coverage {c_hi:.3f} there)" if c_hi < target else
                f"below T = {t_lo:g} (coverage {c_lo:.3f} there)")
        words = (f"range coverage {target:.3f} ((N-1)/(N+1), N = {n}) is not reached "
                 f"between the swept temperatures: the calibrated temperature is {side}")
    elif t_cal is None:
        words = f"no range coverage: N = {n} samples"
    else:
        words = (f"calibrated temperature (range coverage {target:.3f} = (N-1)/(N+1), "
                 f"N = {n}; interpolated): T = {t_cal:.2f}")
    return "\n".join(lines) + "\n\n" + words


FLOW = "flow_t"


def flow_key(temperature):
    """The key of the flow's row at ``temperature``."""
    return f"{FLOW}{float(temperature):g}"


def flow_temperatures(temperature, sweep=()):
    """The temperatures the flow is sampled at: ``temperature``, 1 and the sweep's."""
    return sorted({float(temperature), 1.0, *(float(t) for t in sweep)})


def temperatures_label(temperature):
    """``"T and 1"`` (the default and T = 1, both reported), or ``"1"`` when they agree."""
    return f"{float(temperature):g}" + (" and 1" if float(temperature) != 1.0 else "")


def plot_name(app, temperature, dataset=None):
    """File name of a calibration plot: ``calibration_APP[_DATASET]_tT.png``."""
    return f"calibration_{app}{'_' + dataset if dataset else ''}_t{float(temperature):g}.png"
