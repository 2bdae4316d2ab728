"""``cinn evaluate superres``: the NTIRE 2021 diversity score (patch-wise squared
error) and the PSNR-Y-per-temperature table, on a tiny model and tiny data."""
import numpy as np
import pytest

from cinn.apps.superres.evaluate import diversity_score, psnr
from cinn.apps.superres.resize import to_uint8
from helpers import randomize

TINY = {"scale": 4, "levels": 2, "blocks": 1, "hidden": 8, "subnet_depth": 1,
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


def test_cli_temperature_table_and_diversity(tmp_path, capsys):
    from cinn.cli import main
    from cinn.apps.common.images import write_image
    from cinn.apps.superres.model import build_model
    from cinn.apps.superres.task import make_pair

    model = build_model(TINY)
    hr = np.stack([image(32, 32, seed=i) for i in range(2)])
    model.initialize(*make_pair(hr, None, scale=4))
    randomize(model, scale=0.01, seed=1)
    weights = tmp_path / "tiny.keras"
    model.save(weights)
    data = tmp_path / "set"
    for i in range(2):
        write_image(data / f"im{i}.png", image(36, 44, seed=i))
    capsys.readouterr()
    assert main(["evaluate", "superres", "--data", str(data), "--weights", str(weights),
                 "-n", "2", "--temperatures", "0", "0.7", "--diversity-samples", "3"]) == 0
    out = capsys.readouterr().out
    tables = [ln for ln in out.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert tables[0].endswith("| NTIRE diversity (%) |") and tables[1].startswith("| set |")
    ntire = float(tables[1].split("|")[-2])
    assert 0 <= ntire < 100
    assert tables[2] == "| dataset | T = 0 | T = 0.7 | bicubic |"
    t0, t07, bic = (float(v) for v in tables[3].split("|")[2:5])
    assert abs(t0 - bic) < 3 and t07 > 10    # an untrained flow at T = 0: about bicubic
    # off: no diversity column; bad values are one-line errors
    from cinn.apps.superres.evaluate import format_table

    r = {k: v for k, v in results_of(tables[1]).items()}
    assert "NTIRE" not in format_table([("set", r)])
    assert main(["evaluate", "superres", "--data", str(data), "--weights", str(weights),
                 "--diversity-samples", "1"]) == 1
    assert capsys.readouterr().err.startswith("cinn: error: --diversity-samples")


def results_of(row):
    """A result dict of ``format_table``'s columns from one printed row (no NTIRE)."""
    from cinn.apps.superres.evaluate import COLUMNS

    cells = [v.strip() for v in row.split("|")[2:-1]]
    return {k: (int(v) if k == "images" else float(v)) for (k, _, _), v in zip(COLUMNS, cells)}


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
