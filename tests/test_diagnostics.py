"""cinn.diagnostics: CRPS, rank histograms, coverage and calibration (NumPy only)."""
import math

import numpy as np
import pytest
from PIL import Image

from cinn import diagnostics as dg

M = 20000  # elements


def _gaussian(n, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((n, M)), rng.standard_normal(M)


def _chi2_p(counts):
    from scipy.stats import chisquare
    return chisquare(counts).pvalue


@pytest.mark.parametrize("n", [8, 100])
def test_calibrated_gaussian(n):
    x, y = _gaussian(n)
    assert dg.calibration_error(x, y) < 0.02
    assert abs(dg.coverage_gap(x, y)) < 0.01
    assert abs(dg.range_coverage(x, y) - (n - 1) / (n + 1)) < 0.01
    obs = dg.interval_coverage(x, y)
    np.testing.assert_allclose(obs, dg.expected_coverage(dg.LEVELS, n), atol=0.02)
    counts = dg.rank_histogram(x, y)
    assert counts.shape == (n + 1,) and counts.sum() == M
    assert _chi2_p(counts) > 0.001


def test_range_coverage_of_discrete_values():
    # 8-bit-like values: a calibrated ensemble of rounded values, and values clipped
    # at 0 as pixels at black are; ties with the truth are common in both
    rng = np.random.default_rng(6)
    for x, y in ((np.round(1.5 * rng.standard_normal((8, M))), np.round(1.5 * rng.standard_normal(M))),
                 (np.maximum(rng.standard_normal((8, M)), 0), np.maximum(rng.standard_normal(M), 0))):
        inclusive = np.mean((x.min(0) <= y) & (y <= x.max(0)))
        assert inclusive > 7 / 9 + 0.05          # what counting ties as covered gives
        assert abs(dg.range_coverage(x, y) - 7 / 9) < 0.01
        assert abs(dg.interval_coverage(x, y, levels=[1.0])[0] - 7 / 9) < 0.01
    # exact ends: rank 0 and N are outside, whatever the seed
    x = np.array([[1.0, 1.0], [2.0, 3.0]])
    assert dg.range_coverage(x, np.array([0.5, 2.0])) == 0.5


def test_expected_coverage():
    np.testing.assert_allclose(dg.expected_coverage([0.5, 0.9], 100), [0.5, 0.9])
    # N = 8: the 0.9 interval would reach beyond the samples, clipped to [min, max]
    np.testing.assert_allclose(dg.expected_coverage([0.5, 0.9, 1.0], 8), [0.5, 7 / 9, 7 / 9])


@pytest.mark.parametrize("n", [8, 100])
def test_overconfident_and_underconfident(n):
    x, y = _gaussian(n, scale=0.5)
    assert dg.coverage_gap(x, y) < -0.1
    assert dg.calibration_error(x, y) > 0.1
    counts = dg.rank_histogram(x, y)
    middle = counts[1:-1].mean()
    assert counts[0] > 2 * middle and counts[-1] > 2 * middle  # U shape

    x, y = _gaussian(n, scale=2.0)
    assert dg.coverage_gap(x, y) > 0.1
    assert dg.calibration_error(x, y) > 0.1
    counts = dg.rank_histogram(x, y)
    assert counts[n // 2] > 2 * counts[0] and counts[n // 2] > 2 * counts[-1]  # hump


def test_crps_matches_gaussian_closed_form():
    rng = np.random.default_rng(1)
    mu, sigma, n, m = 0.3, 1.5, 2000, 1000
    y = rng.standard_normal(m) * 1.2
    x = mu + sigma * rng.standard_normal((n, m))
    z = (y - mu) / sigma
    phi = np.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    exact = sigma * (z * (2 * cdf - 1) + 2 * phi - 1 / math.sqrt(math.pi))
    fair = dg.crps(x, y, fair=True)
    assert fair.shape == (m,)
    assert abs(fair.mean() / exact.mean() - 1) < 0.01
    # the plain form is larger by 1/2 E|X-X'|/N = sigma/(sqrt(pi) N)
    plain = dg.crps(x, y).mean()
    assert abs(plain - (exact.mean() + sigma / (math.sqrt(math.pi) * n))) < 0.01 * exact.mean()


@pytest.mark.parametrize("shape, plain_ratio, fair_ratio", [
    ("gaussian", 9 * math.sqrt(2) / 16, math.sqrt(2) / 2),  # (N+1)/(2N) sqrt 2, 1/sqrt 2
    ("laplace", 27 / 32, 3 / 4),  # 3/4 + 3/(4N), 3/4
])
def test_crps_of_a_perfect_posterior_at_n8(shape, plain_ratio, fair_ratio):
    # The best a posterior can do against the best deterministic answer (its
    # median): 8 samples from the true distribution, truth from it too. This is
    # why "CRPS <= 0.80 x the baseline's MAE" is near the bound at N = 8.
    rng = np.random.default_rng(5)
    draw = rng.standard_normal if shape == "gaussian" else rng.laplace
    x, y = draw(size=(8, 400000)), draw(size=400000)
    mae = np.abs(y).mean()
    assert abs(dg.crps(x, y).mean() / mae - plain_ratio) < 0.01
    assert abs(dg.crps(x, y, fair=True).mean() / mae - fair_ratio) < 0.01


def test_crps_brute_force_and_axis():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 4))  # samples along axis 1
    y = rng.standard_normal((3, 4))
    pair = np.abs(x[:, :, None] - x[:, None, :]).mean(axis=(1, 2))
    brute = np.abs(x - y[:, None]).mean(axis=1) - 0.5 * pair
    np.testing.assert_allclose(dg.crps(x, y, axis=1), brute, atol=1e-12)
    np.testing.assert_allclose(dg.crps(x, y, axis=1, fair=True),
                               np.abs(x - y[:, None]).mean(axis=1) - 0.5 * pair * 5 / 4,
                               atol=1e-12)


def test_crps_single_sample_is_absolute_error():
    rng = np.random.default_rng(3)
    pred, y = rng.standard_normal((6, 7)), rng.standard_normal((6, 7))
    c = dg.crps(pred[None], y)
    assert np.array_equal(c, np.abs(pred - y))
    assert c.mean() == np.abs(pred - y).mean()
    with pytest.raises(ValueError, match="at least 2"):
        dg.crps(pred[None], y, fair=True)


def test_crps_permutation_invariant():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((50, 300)), rng.standard_normal(300)
    perm = x[rng.permutation(50)]
    np.testing.assert_allclose(dg.crps(perm, y), dg.crps(x, y), rtol=0, atol=1e-12)


def test_rank_histogram_ties_are_spread():
    # discrete samples equal to the truth: ranks spread over all N+1 bins
    x, y = np.zeros((9, 5000)), np.zeros(5000)
    counts = dg.rank_histogram(x, y, seed=5)
    assert counts.shape == (10,) and counts.min() > 0
    assert _chi2_p(counts) > 0.001
    assert np.array_equal(counts, dg.rank_histogram(x, y, seed=5))  # seeded
    assert dg.calibration_error(x, y) < 0.03


def test_bootstrap_ci():
    rng = np.random.default_rng(6)
    small, large = rng.normal(1.0, 1.0, 30), rng.normal(1.0, 1.0, 3000)
    est, lo, hi = dg.bootstrap_ci(small)
    assert lo <= est <= hi and est == small.mean()
    est2, lo2, hi2 = dg.bootstrap_ci(large)
    assert lo2 <= est2 <= hi2 and lo2 < 1.0 < hi2
    assert hi2 - lo2 < 0.3 * (hi - lo)
    assert dg.bootstrap_ci(small, seed=1) == dg.bootstrap_ci(small, seed=1)
    est, lo, hi = dg.bootstrap_ci(small, stat=np.median, n_boot=500, level=0.9)
    assert lo <= est <= hi


def test_posterior_summary_array_and_list():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((10, 8, 16, 16)), rng.standard_normal((10, 16, 16))
    s = dg.posterior_summary(x, y, n_boot=200)
    assert set(s.per_image) == {"crps", "range_coverage", "calibration_error", "coverage_gap"}
    assert all(v.shape == (10,) for v in s.per_image.values())
    for est, lo, hi in s.intervals.values():
        assert lo <= est <= hi
    assert abs(s.intervals["range_coverage"][0] - 7 / 9) < 0.05
    assert s.rank_hist.shape == (9,) and s.rank_hist.sum() == 10 * 256
    assert s.observed.shape == s.expected.shape == (9,)
    assert set(s.as_dict()["crps"]) == {"mean", "low", "high"}

    sizes = [(12, 9), (20, 20), (5, 31)]
    xs = [rng.standard_normal((8,) + hw) for hw in sizes]
    ys = [rng.standard_normal(hw) for hw in sizes]
    s = dg.posterior_summary(xs, ys, n_boot=200)
    np.testing.assert_allclose(s.per_image["crps"], [dg.crps(a, b).mean() for a, b in zip(xs, ys)])
    assert s.rank_hist.shape == (9,)
    s = dg.posterior_summary([xs[0], xs[1][:5]], ys[:2], n_boot=50)  # N differs: no pooled ranks
    assert s.rank_hist is None and s.per_image["coverage_gap"].shape == (2,)
    with pytest.raises(ValueError, match=r"image 1: truth must have shape \(20, 20\)"):
        dg.posterior_summary(xs, [ys[0], ys[0], ys[2]])
    with pytest.raises(ValueError, match="same number"):
        dg.posterior_summary(xs, ys[:2])


def test_shape_errors():
    x = np.zeros((8, 4, 5))
    with pytest.raises(ValueError, match=r"truth must have shape \(4, 5\)"):
        dg.crps(x, np.zeros((4, 6)))
    with pytest.raises(ValueError, match=r"truth must have shape \(8, 4\)"):
        dg.rank_histogram(x, np.zeros((4, 5)), axis=-1)
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        dg.interval_coverage(x, np.zeros((4, 5)), axis=3)
    with pytest.raises(ValueError, match="levels"):
        dg.calibration_error(x, np.zeros((4, 5)), levels=[0.5, 1.5])
    with pytest.raises(ValueError, match="observed must have shape"):
        dg.calibration_plot([0.1, 0.5], [0.1], [1, 2, 3], "unused.png")


@pytest.mark.parametrize("backend", ["pillow", None])
def test_calibration_plot(tmp_path, backend):
    x, y = _gaussian(8, scale=0.5)
    exp = dg.expected_coverage(dg.LEVELS, 8)
    path = tmp_path / "calibration.png"
    out = dg.calibration_plot(exp, dg.interval_coverage(x, y), dg.rank_histogram(x, y), path,
                              title="overconfident", backend=backend)
    assert out == path
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (800, 360)
        px = np.asarray(im.convert("RGB"))
    assert (px < 128).any() and (px > 250).mean() > 0.5  # something drawn, mostly white


def test_calibration_plot_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "c.png"
    dg.calibration_plot([0.5, 0.9], [0.4, 0.8], [5, 3, 5], path, backend="matplotlib")
    with Image.open(path) as im:
        assert im.size == (800, 360)
