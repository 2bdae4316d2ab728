"""``cinn.apps.common.posterior_report``: the one way ``cinn evaluate`` scores samples
(per image, then bootstrap intervals over images), the calibrated temperature of a
sweep, and the tables and plots it prints and writes. NumPy only, no model."""
import numpy as np
import pytest

from cinn.apps.common import posterior_report as pr


def psnr_only(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-10)), -mse


def gaussian_images(k, n, scale, shape=(24, 24, 3), seed=0):
    """``k`` images whose truth and ``n`` samples come from the same N(128, 20^2) per
    element, the samples' spread times ``scale``; values rounded to integers in 0-255
    (float, so that ties are rare)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        centre = rng.uniform(60, 190, shape)
        truth = centre + 20 * rng.standard_normal(shape)
        samples = centre + 20 * scale * rng.standard_normal((n,) + shape)
        out.append((samples, truth))
    return out


def test_calibrated_samples_cover_as_expected_and_narrow_ones_are_flagged():
    for scale, sign in ((1.0, 0), (0.4, -1), (2.5, 1)):
        report = pr.PosteriorReport(psnr_only)
        for samples, truth in gaussian_images(6, 8, scale):
            report.add("flow_t1", "flow", samples, truth)
        s = report.methods["flow_t1"].summary(n_boot=300)
        cov, low, high = s["range_coverage"]
        assert low <= cov <= high
        if sign == 0:
            assert abs(cov - pr.calibrated_coverage(8)) < 0.02 and s["calibration_error"][0] < 0.03
        else:
            assert np.sign(s["coverage_gap"][0]) == sign and s["calibration_error"][0] > 0.1


def test_deterministic_rows_crps_is_mae_and_no_spread_figures():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 256, (10, 12, 3)).astype(np.uint8)
    guess = np.clip(truth.astype(int) + rng.integers(-9, 10, truth.shape), 0, 255).astype(np.uint8)
    where = np.zeros((10, 12), bool)
    where[2:6, 3:9] = True
    row = pr.image_scores(guess[None], truth, psnr_only, where)
    assert row["crps"] == pytest.approx(np.abs(guess[where].astype(float) - truth[where]).mean())
    assert row["crps_fair"] == row["crps"]   # a point mass: its CRPS is its MAE
    assert all(row[k] is None for k in pr.SPREAD_METRICS)
    assert row["psnr_best"] == row["psnr_single"] == row["psnr_mean"]
    report = pr.PosteriorReport(psnr_only)
    report.add("base", "baseline", guess[None], truth, where)
    table = report.tables()
    assert "| baseline | " in table and table.split("\n")[2].count("—") == 3
    with pytest.raises(ValueError, match="samples must be"):
        pr.image_scores(guess, truth, psnr_only)


def test_fair_crps_removes_the_finite_ensemble_penalty():
    """Truth and 8 samples from one Gaussian: the plain CRPS is (N+1)/(2N) sqrt(2) =
    0.795x the MAE of the distribution's median, the fair one 1/sqrt(2) = 0.707x."""
    rng = np.random.default_rng(3)
    centre = rng.uniform(60, 190, (40, 40, 3))
    truth = centre + 20 * rng.standard_normal(centre.shape)
    samples = centre + 20 * rng.standard_normal((8,) + centre.shape)
    row = pr.image_scores(samples, truth, psnr_only)
    mae = np.abs(truth - centre).mean()
    assert row["crps"] / mae == pytest.approx(9 / 16 * np.sqrt(2), rel=0.02)
    assert row["crps_fair"] / mae == pytest.approx(1 / np.sqrt(2), rel=0.02)
    report = pr.PosteriorReport(psnr_only)
    report.add("flow_t1", "flow", samples, truth)
    assert "fair CRPS" in report.tables().split("\n")[0]


def test_bootstrap_interval_is_over_images():
    report = pr.PosteriorReport(psnr_only)
    for samples, truth in gaussian_images(2, 4, 1.0) + gaussian_images(2, 4, 3.0, seed=5):
        report.add("m", "m", samples, truth)
    per_image = [r["crps"] for r in report.methods["m"].images]
    mean, low, high = report.methods["m"].summary(n_boot=500)["crps"]
    assert mean == pytest.approx(np.mean(per_image))
    assert min(per_image) <= low < mean < high <= max(per_image)


def test_calibrated_temperature_interpolates_the_first_crossing():
    target = pr.calibrated_coverage(8)
    assert target == pytest.approx(7 / 9)
    t = pr.calibrated_temperature([1.0, 0.5, 0.8], [0.80, 0.50, 0.70], target)
    assert t == pytest.approx(0.8 + (target - 0.7) / 0.1 * 0.2)
    assert pr.calibrated_temperature([0.2, 0.5], [0.1, 0.3], target) is None
    assert pr.calibrated_temperature([0.5, 0.9], [0.5, target], target) == pytest.approx(0.9)


def test_print_sweep_and_plots(tmp_path, capsys):
    report = pr.PosteriorReport(psnr_only)
    for t in pr.flow_temperatures(0.5, [0.8, 1.5]):
        for samples, truth in gaussian_images(3, 8, t, seed=2):
            report.add(pr.flow_key(t), f"flow T = {t:g}", samples, truth)
    for samples, truth in gaussian_images(3, 1, 0.0, seed=2):
        report.add("mode", "the mode", samples, truth)
    paths = report.print("app", 0.5, [0.8, 1.5], tmp_path / "out", "set", ["mode"])
    text = capsys.readouterr().out
    names = [ln.split("|")[1].strip() for ln in text.split("\n\n")[0].splitlines()[2:]]
    assert names == ["flow T = 0.5", "flow T = 1", "the mode"]
    sweep = text.split("# temperature sweep")[1]
    assert [ln.split("|")[1].strip() for ln in sweep.splitlines()
            if ln.startswith("| ")][2:] == ["0.5", "0.8", "1", "1.5"]
    head = [c.strip() for c in sweep.splitlines()[1].split("|")[1:-1]]
    assert head[:4] == ["T", "range coverage", "CRPS", "fair CRPS"]
    t_cal = float(sweep.split("interpolated): T = ")[1].split()[0])
    assert 0.8 < t_cal < 1.5                     # the samples' scale is the temperature here
    assert [p.name for p in paths] == ["calibration_app_set_t0.5.png", "calibration_app_set_t1.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    merged = report.merged([report])
    assert len(merged.methods["mode"].images) == 6


def test_sweep_names_the_side_when_not_crossed():
    summary = {"range_coverage": (0.70, 0.68, 0.72)}
    text = pr.format_sweep([(0.5, {"range_coverage": (0.4, 0.38, 0.42)}), (1.0, summary)], 8)
    assert text.endswith("the calibrated temperature is above T = 1 (coverage 0.700 there)")
    text = pr.format_sweep([(1.0, {"range_coverage": (0.9, 0.88, 0.92)})], 8)
    assert text.endswith("below T = 1 (coverage 0.900 there)")
