"""``cinn evaluate superres``: the NTIRE 2021 diversity score (patch-wise squared
error), the posterior report (CRPS, coverage, calibration, PSNR/SSIM with bootstrap
intervals; bicubic and the T = 0 output as deterministic rows), the temperature sweep
and the calibration plots, on a tiny model and tiny data."""
import numpy as np
import pytest

from cinn.apps.superres.evaluate import diversity_score, psnr
from cinn.apps.superres.resize import to_uint8
from helpers import randomize

TINY = {"scale": 4, "levels": 2, "blocks": 1, "subnet": {"hidden": 8, "depth": 1},
        "cond_channels": 4, "cond_hidden": 8, "cond_blocks": 1, "cond_growth": 4}


def image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx[..., None] / 5.0 + np.arange(3)) * np.cos(yy[..., None] / 7.0)
    return to_uint8(base + rng.normal(0, 5, (h, w, 3)))


def test_diversity_score_definition():
    rng = np.random.default_rng(0)
    hr = image(40, 48).astype(np.float64)
    noisy = hr + rng.normal(0, 10, hr.shape)
    # equal samples (a deterministic method) or an exact sample: 0
    assert diversity_score(np.stack([noisy] * 3), hr) == 0.0
    assert diversity_score(np.stack([noisy, hr]), hr) == 0.0
    # each sample exact in its own half (patch-aligned at x = 16 and 32): local best 0
    a, b = noisy.copy(), noisy.copy()
    a[:, :32], b[:, 32:] = hr[:, :32], hr[:, 32:]
    assert diversity_score(np.stack([a, b]), hr) == pytest.approx(100.0)
    # in general: 1 - 10^((PSNR_global - PSNR_local) / 10), the local best being the
    # image assembled from the best sample of every 16x16 patch (edge patches smaller)
    samples = np.stack([hr + rng.normal(0, 8, hr.shape) for _ in range(3)])
    best = max(samples, key=lambda x: psnr(x, hr))
    assembled = np.empty_like(hr)
    for y in range(0, 40, 16):
        for x in range(0, 48, 16):
            errs = [np.mean((s[y:y + 16, x:x + 16] - hr[y:y + 16, x:x + 16]) ** 2)
                    for s in samples]
            assembled[y:y + 16, x:x + 16] = samples[int(np.argmin(errs))][y:y + 16, x:x + 16]
    expected = (1 - 10 ** ((psnr(best, hr) - psnr(assembled, hr)) / 10)) * 100
    score = diversity_score(samples, hr)
    assert score == pytest.approx(expected, rel=1e-9) and 0 < score < 100


def tiny_weights(tmp_path):
    from cinn.apps.superres.model import build_model
    from cinn.apps.superres.task import make_pair

    model = build_model(TINY)
    hr = np.stack([image(32, 32, seed=i) for i in range(2)])
    model.initialize(*make_pair(hr, None, scale=4))
    randomize(model, scale=0.01, seed=1)
    weights = tmp_path / "tiny.keras"
    model.save(weights)
    return weights


def table_rows(text):
    """``{first cell: [other cells]}`` of the Markdown rows in ``text`` (headers too;
    rows of the same name in several tables joined in order)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and "---" not in line:
            cells = [c.strip() for c in line.split("|")[1:-1]]
            rows.setdefault(cells[0], []).extend(cells[1:])
    return rows


def ci(cell_text):
    """``(mean, low, high)`` of a ``mean [low, high]`` cell."""
    mean, rest = cell_text.split(" [")
    low, high = rest.rstrip("]").split(", ")
    return float(mean), float(low), float(high)


def test_cli_posterior_report_sweep_and_diversity(tmp_path, capsys):
    from cinn.cli import main
    from cinn.apps.common.images import write_image

    weights = tiny_weights(tmp_path)
    data = tmp_path / "set"
    for i in range(3):
        write_image(data / f"im{i}.png", image(36, 44, seed=i))
    out = tmp_path / "plots"
    capsys.readouterr()
    assert main(["evaluate", "superres", "--data", str(data), "--weights", str(weights),
                 "-n", "3", "--temperature", "0.5", "--temperatures", "0", "0.7",
                 "--diversity-samples", "3", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    rows = table_rows(text)
    # the posterior table: the flow at the given T and at 1, its T = 0 output, bicubic
    flow, flow1 = rows["cINN, N = 3, T = 0.5"], rows["cINN, N = 3, T = 1"]
    mode, bic = rows["the flow's T = 0 output"], rows["bicubic"]
    assert len(flow) == 5 + 6 and len(bic) == 5 + 6    # both tables, merged by name
    for r in (flow, flow1):
        crps, fair, cov, cal, gap = (ci(c) for c in r[:5])
        assert all(lo <= m <= hi for m, lo, hi in (crps, fair, cov, cal, gap))
        assert 0 < fair[0] < crps[0] and 0 <= cov[0] <= 1 and 0 <= cal[0] <= 1
        assert ci(r[5])[0] >= ci(r[6])[0]                    # best-of-N >= single sample
    assert ci(flow1[2])[0] > ci(flow[2])[0]                  # wider at T = 1: more covered
    # deterministic rows: CRPS (fair or not) is the MAE, no spread metrics,
    # best = single = mean
    assert bic[0] == bic[1] and mode[0] == mode[1]
    assert bic[2:5] == ["—"] * 3 and mode[2:5] == ["—"] * 3
    assert bic[5] == bic[6] == bic[7]
    # the sweep: every temperature, and the calibrated one (N = 3: 0.5) when crossed
    sweep = text.split("# temperature sweep")[1].split("calibration plot")[0]
    assert [r for r in table_rows(sweep) if r != "T"] == ["0", "0.5", "0.7", "1"]
    assert "range coverage 0.500 = (N-1)/(N+1), N = 3" in sweep or "not reached" in sweep
    # calibration plots of the flow at T and at 1 (set name in the file name)
    assert sorted(p.name for p in out.iterdir()) == [
        "calibration_superres_x4_set_t0.5.png", "calibration_superres_x4_set_t1.png"]
    extras = table_rows(text.split("# the samples at T = 0.5")[1])
    assert extras["dataset"][-1] == "NTIRE diversity (%)"
    assert 0 <= float(extras["set"][-1]) < 100
    # off: no diversity column; bad values are one-line errors
    from cinn.apps.superres.evaluate import format_table

    assert "NTIRE" not in format_table([("set", {"images": 1, "lr_psnr": 60.0, "diversity": 1.0,
                                                 "block_edges": 1.0, "block_edges_hr": 1.0})])
    assert main(["evaluate", "superres", "--data", str(data), "--weights", str(weights),
                 "--diversity-samples", "1", "-o", str(out)]) == 1
    assert capsys.readouterr().err.startswith("cinn: error: --diversity-samples")


def test_evaluate_folder_report_matches_diagnostics(tmp_path):
    """The report's CRPS of bicubic is its MAE over the cropped HR image (RGB), and the
    flow's figures are ``cinn.diagnostics``' on the same samples."""
    from cinn import diagnostics as dg
    from cinn.apps.common.images import write_image
    from cinn.apps.superres import infer
    from cinn.apps.superres.evaluate import evaluate_folder
    from cinn.apps.superres.resize import make_lr

    model = infer.load(tiny_weights(tmp_path))
    data = tmp_path / "set"
    hr = image(36, 44, seed=3)
    write_image(data / "a.png", hr)
    report, extras = evaluate_folder(model, data, n=4, temperature=0.8, seed=2)
    assert extras["images"] == 1 and set(report.methods) == {
        "flow_t0.8", "flow_t1", "mode", "bicubic"}
    lr = make_lr(hr, 4)
    truth = hr[4:-4, 4:-4].astype(np.float64)
    bic = infer.bicubic(lr, 4)[4:-4, 4:-4].astype(np.float64)
    assert report.methods["bicubic"].images[0]["crps"] == pytest.approx(
        np.abs(bic - truth).mean())
    samples = infer.upscale(model, lr, 4, 0.8, 2)[:, 4:-4, 4:-4]
    got = report.methods["flow_t0.8"].images[0]
    assert got["crps"] == pytest.approx(dg.crps(samples, truth).mean())
    assert got["range_coverage"] == pytest.approx(dg.range_coverage(samples, truth))


def test_block_edge_ratio_known_images():
    """A linear ramp has equal steps everywhere (ratio 1); adding a pattern constant over
    each 8x8 block puts steps on the block edges only (ratio well above 1)."""
    from cinn.apps.superres.evaluate import block_edge_ratio

    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    ramp = np.repeat((xx + yy)[..., None], 3, axis=-1)
    assert abs(block_edge_ratio(ramp, 8) - 1.0) < 1e-12
    blocks = np.random.default_rng(0).random((8, 8)).repeat(8, 0).repeat(8, 1) * 40
    assert block_edge_ratio(ramp + blocks[..., None], 8) > 5
    assert block_edge_ratio(ramp + blocks[..., None], 4) < block_edge_ratio(
        ramp + blocks[..., None], 8)     # at 4 half of the tested edges are inside blocks
