"""Colorization app: Lab conversion, colorize (sizes, L kept, determinism),
data loading, the command line's errors, training/evaluation smoke tests and
the shipped weights."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cinn.cli import main
from cinn.apps.colorization import color
from cinn.apps.colorization.infer import colorize
from cinn.apps.colorization.model import ColorizationINN, build_model
from cinn.errors import CinnError
from helpers import randomize, to_np

TINY = {"levels": 2, "blocks": 1, "subnet": {"hidden": 8, "depth": 1}, "cond_channels": 4,
        "cond_hidden": 8, "cond_blocks": 1}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny randomised model (so samples have colour) and its .keras file."""
    import keras

    keras.utils.set_random_seed(1)
    model = build_model(TINY)
    randomize(model, scale=0.05, seed=1)
    path = tmp_path_factory.mktemp("tiny") / "model.keras"
    model.save(path)
    return model, path


def lab_of(rgb):
    return to_np(color.rgb_to_lab(rgb))


def picture(h, w, seed=0):
    """A smooth colourful uint8 picture."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 4), max(2, w // 4), 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# -- colour space -------------------------------------------------------------------
def test_lab_matches_skimage_and_round_trips():
    from skimage.color import lab2rgb, rgb2lab
    from skimage.data import astronaut

    rng = np.random.default_rng(0)
    rgb = np.concatenate([rng.integers(0, 256, (500, 3)),
                          [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255], [1, 2, 3]]])
    rgb = rgb.astype(np.uint8)[:, None]
    np.testing.assert_allclose(lab_of(rgb), rgb2lab(rgb), atol=2e-3)
    img = astronaut()[::8, ::8]
    np.testing.assert_allclose(lab_of(img), rgb2lab(img), atol=2e-3)
    back = to_np(color.lab_to_rgb(color.rgb_to_lab(rgb)))
    np.testing.assert_allclose(back, rgb / 255.0, atol=1e-4)
    lab = rgb2lab(rng.uniform(0, 1, (300, 1, 3)))  # in gamut: skimage does not clip there
    np.testing.assert_allclose(to_np(color.lab_to_rgb(lab)), lab2rgb(lab), atol=1e-4)
    # out-of-gamut Lab is clipped to [0, 1], never NaN
    wild = np.array([[[50.0, 120.0, -120.0], [0.0, -128.0, 127.0], [100.0, 0.0, 0.0]]])
    out = to_np(color.lab_to_rgb(wild))
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1


def test_split_and_merge_lab_are_inverse_and_scaled():
    rgb = picture(16, 16)
    c, x = color.split_lab(rgb)
    c, x = to_np(c), to_np(x)
    assert c.shape == (16, 16, 1) and x.shape == (16, 16, 2)
    assert -1.0 <= c.min() and c.max() <= 1.0 and np.abs(x).max() <= 1.3
    assert np.array_equal(color.to_uint8(color.merge_lab(c, x)), rgb)


# -- sampling -----------------------------------------------------------------------
# sizes that pad to few distinct shapes (JAX compiles every op per new shape)
@pytest.mark.parametrize("shape", [(13, 10), (2, 3)])
def test_colorize_any_size_keeps_lightness(tiny, shape):
    model, _ = tiny
    rgb = picture(*shape)
    out = colorize(model, rgb, n=2, temperature=0.1, seed=0)  # untrained: ab ~ N(0, 10)
    assert out.shape == (2,) + shape + (3,) and out.dtype == np.uint8
    l_in = lab_of(rgb)[..., 0]
    l_out = lab_of(out)[..., 0]
    assert np.abs(l_out - l_in).mean() < 1.0          # L is the input's (up to gamut clipping)
    ab = lab_of(out)[..., 1:]
    assert ab.std(axis=0).mean() > 0.05               # the samples differ


def test_colorize_grey_input_and_determinism(tiny):
    model, _ = tiny
    grey = cv2.cvtColor(picture(14, 11), cv2.COLOR_RGB2GRAY)
    a = colorize(model, grey, n=2, temperature=0.8, seed=3)
    b = colorize(model, grey[..., None], n=2, temperature=0.8, seed=3)
    c = colorize(model, grey, n=2, temperature=0.8, seed=4)
    assert a.shape == (2, 14, 11, 3)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    zero = colorize(model, grey, n=2, temperature=0.0, seed=3, saturation=None, hue=0)
    assert np.array_equal(zero[0], zero[1])           # temperature 0: the mode-like sample
    drawn = colorize(model, grey, n=2, temperature=0.0, seed=3)
    assert not np.array_equal(drawn[0], drawn[1])     # ... in two global colours


def test_colorize_rejects_bad_arrays(tiny):
    model, _ = tiny
    for bad in (np.zeros((1, 1, 3), np.uint8), np.zeros((5, 5, 2), np.uint8),
                np.zeros((5, 5, 3), np.float32), np.zeros((5,), np.uint8)):
        with pytest.raises(CinnError):
            colorize(model, bad, n=1)
    with pytest.raises(CinnError):
        colorize(model, picture(8, 8), n=0)


def test_unconditional_variant_ignores_the_condition(tiny):
    model, _ = tiny                  # the same architecture with use_condition=False
    x = np.random.default_rng(0).normal(0, 0.1, (2, 8, 8, 2)).astype("float32")
    c1 = np.zeros((2, 8, 8, 1), "float32")
    c2 = np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 1)).astype("float32")
    assert not np.allclose(to_np(model.log_prob(x, c1)), to_np(model.log_prob(x, c2)))
    model.use_condition = False
    try:
        np.testing.assert_allclose(to_np(model.log_prob(x, c1)),
                                   to_np(model.log_prob(x, c2)), rtol=1e-6)
    finally:
        model.use_condition = True


# -- data -----------------------------------------------------------------------------
def test_datasets_skip_grey_files_and_scale(tmp_path):
    from cinn.apps.colorization.data import make_datasets

    for i in range(6):
        cv2.imwrite(str(tmp_path / f"c{i}.png"), picture(40, 50, seed=i))
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((40, 50), 128, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    cfg = {"data": {"crop": 32, "batch_size": 4, "steps_per_epoch": 3, "val_images": 1}}
    train, val = make_datasets(tmp_path, cfg, seed=0)
    assert len(train.images) == 5 and len(train) == 3
    (x, c), = train[0]
    assert x.shape == (4, 32, 32, 2) and c.shape == (4, 32, 32, 1) and x.dtype == np.float32
    assert -1 <= c.min() and c.max() <= 1 and np.abs(x).max() < 1.3
    (x2, _), = train[0]
    assert np.array_equal(x, x2)                       # batches are reproducible
    (xv, cv), = val[0]
    assert xv.shape == (1, 32, 32, 2)


def _plain_and_augmented_datasets(folder, **augment):
    """``make_datasets`` on six small pictures in ``folder``, without and with the
    ``data`` options ``augment``: two (train, validation) pairs of the same crops."""
    from cinn.apps.colorization.data import make_datasets

    for i in range(6):
        cv2.imwrite(str(folder / f"c{i}.png"), picture(40, 50, seed=i))
    data = {"crop": 32, "batch_size": 4, "steps_per_epoch": 3, "val_images": 1}
    return (make_datasets(folder, {"data": data}, seed=0),
            make_datasets(folder, {"data": {**data, **augment}}, seed=0))


def test_saturation_augmentation_scales_ab_only(tmp_path):
    from cinn.apps.colorization.data import to_pair

    rgb = np.stack([picture(16, 16, seed=i) for i in range(3)])
    x, c = to_pair(rgb)
    x2, c2 = to_pair(rgb, np.random.default_rng(0), saturation=(2, 2))
    np.testing.assert_allclose(x2, 2 * x, rtol=1e-6)   # ab doubled, L unchanged
    np.testing.assert_array_equal(c2, c)
    x3, _ = to_pair(rgb, np.random.default_rng(0), saturation=(0.5, 2.0))
    ratio = np.abs(x3).sum(axis=(1, 2, 3)) / np.abs(x).sum(axis=(1, 2, 3))
    assert np.all((ratio >= 0.5 - 1e-6) & (ratio <= 2 + 1e-6)) and np.ptp(ratio) > 0
    for bad in ([0, 1], [2, 1], [1], "x", [1, float("inf")]):
        with pytest.raises(ValueError, match="data.saturation"):
            to_pair(rgb, saturation=bad)
    (plain, val), (sat, val_sat) = _plain_and_augmented_datasets(tmp_path, saturation=[3, 3])
    (x, c), = plain[0]
    (xs, cs), = sat[0]
    np.testing.assert_allclose(xs, 3 * x, rtol=1e-6)   # same crops, scaled ab
    np.testing.assert_array_equal(cs, c)
    np.testing.assert_array_equal(val_sat[0][0][0], val[0][0][0])  # validation never scaled


def test_hue_augmentation_rotates_ab_per_crop_and_keeps_chroma(tmp_path):
    from cinn.apps.colorization.data import to_pair

    rgb = np.stack([picture(16, 16, seed=i) for i in range(4)])
    x, c = to_pair(rgb)
    np.testing.assert_array_equal(to_pair(rgb, np.random.default_rng(0), hue=0)[0], x)
    xh, ch = to_pair(rgb, np.random.default_rng(0), hue=90)
    np.testing.assert_array_equal(ch, c)
    np.testing.assert_allclose(np.hypot(*np.moveaxis(xh, -1, 0)),
                               np.hypot(*np.moveaxis(x, -1, 0)), rtol=1e-5, atol=1e-6)
    # one angle per crop: the rotation from x to xh is the same at every pixel of a crop
    z, zh = x[..., 0] + 1j * x[..., 1], xh[..., 0] + 1j * xh[..., 1]
    first = []
    for k in range(len(x)):
        coloured = np.abs(z[k]) > 0.05   # angles of (near) grey pixels are noise
        angle = np.angle(zh[k][coloured] / z[k][coloured])
        np.testing.assert_allclose(angle, angle[0], atol=1e-3)
        first.append(angle[0])
    assert np.all(np.abs(first) <= np.pi / 2 + 1e-6) and np.ptp(first) > 0
    for bad in (-1, 181, "x", [1, 2]):
        with pytest.raises(ValueError, match="data.hue"):
            to_pair(rgb, hue=bad)
    (_, val), (_, val_rot) = _plain_and_augmented_datasets(tmp_path, hue=30)
    np.testing.assert_array_equal(val_rot[0][0][0], val[0][0][0])  # validation never rotated


# -- command line ----------------------------------------------------------------------
def _one_line_error(capsys, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cinn: error:") and "\n" not in err, err
    assert "Traceback" not in err
    return err


def test_cli_bad_inputs(tmp_path, capsys, tiny):
    _, weights = tiny
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    text = tmp_path / "notes.jpg"
    text.write_text("hello, not a picture")
    one = tmp_path / "one.png"
    cv2.imwrite(str(one), np.zeros((1, 1, 3), np.uint8))
    base = ["colorize", "-o", str(tmp_path / "out"), "--weights", str(weights)]
    assert "no such file" in _one_line_error(capsys, base + [str(tmp_path / "missing.png")])
    assert "not a readable image" in _one_line_error(capsys, base + [str(corrupt)])
    assert "not a readable image" in _one_line_error(capsys, base + [str(text)])
    assert "1x1" in _one_line_error(capsys, base + [str(one)])
    assert "unknown scikit-image" in _one_line_error(capsys, base + ["skimage:nope"])
    _one_line_error(capsys, base + ["-n", "0", str(one)])
    _one_line_error(capsys, ["colorize", "--weights", str(tmp_path / "nope.keras"),
                             "skimage:camera"])
    assert not (tmp_path / "out").exists()


def test_cli_writes_grid_and_samples(tmp_path, capsys, tiny):
    _, weights = tiny
    cv2.imwrite(str(tmp_path / "pic.png"), cv2.cvtColor(picture(15, 10), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "grey.png"), cv2.cvtColor(picture(15, 10), cv2.COLOR_RGB2GRAY))
    out = tmp_path / "out"
    argv = ["colorize", str(tmp_path / "pic.png"), str(tmp_path / "grey.png"), "-n", "2",
            "--seed", "1", "-o", str(out), "--weights", str(weights), "--save-samples"]
    assert main(argv) == 0
    grid = cv2.imread(str(out / "pic_colorized.png"))
    assert grid.shape == (15, 4 * 10 + 3 * 4, 3)       # grey | 2 samples | original
    assert cv2.imread(str(out / "grey_colorized.png")).shape == (15, 3 * 10 + 2 * 4, 3)
    assert cv2.imread(str(out / "pic_sample1.png")).shape == (15, 10, 3)
    first = (out / "pic_colorized.png").read_bytes()
    assert main(argv) == 0
    assert (out / "pic_colorized.png").read_bytes() == first   # same seed, same bytes


def test_console_script_missing_file(tmp_path):
    exe = Path(sys.executable).with_name("cinn")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cinn.cli"]
    proc = subprocess.run(cmd + ["colorize", str(tmp_path / "missing.png")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("cinn")]
    assert lines == [f"cinn: error: {tmp_path / 'missing.png'}: no such file"], proc.stderr
    assert "Traceback" not in proc.stderr


# -- training and evaluation ----------------------------------------------------------
def test_train_then_evaluate_tiny(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        cv2.imwrite(str(data / f"c{i}.png"), picture(24, 40, seed=i))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "model: {levels: 1, blocks: 1, subnet: {hidden: 8, depth: 1}, cond_channels: 4, "
        "cond_hidden: 8}\n"
        "data: {crop: 16, batch_size: 4, steps_per_epoch: 2, val_images: 0}\n"
        "train: {epochs: 1, learning_rate: 0.001, tensorboard: false}\n")
    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", "colorization", "--data", str(data), "--config", str(cfg),
                 "--out", str(run)]) == 0
    assert (run / "model.keras").exists()
    # output to a file or pipe (a nohup log): one plain line per epoch, no progress bar
    log = capsys.readouterr().out
    assert "\x1b" not in log and "\r" not in log, repr(log[-300:])
    assert [ln.split(" - ")[0] for ln in log.splitlines() if " - loss: " in ln] == ["2/2"], log
    # shipping drops the optimizer state and keeps the weights
    from cinn.apps.common.pretrained import load_model, ship

    shipped = ship("colorization", run, tmp_path / "shipped.keras")
    assert shipped.stat().st_size < (run / "model.keras").stat().st_size
    a, b = load_model("colorization", run), load_model("colorization", shipped)
    assert all(np.array_equal(to_np(u), to_np(v)) for u, v in zip(a.weights, b.weights))
    with pytest.raises(CinnError, match="not for superres"):
        ship("superres", shipped, tmp_path / "wrong.keras")
    capsys.readouterr()
    assert main(["evaluate", "colorization", "--data", str(data), "--weights", str(shipped),
                 "-n", "2", "--limit", "2", "--size", "16"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| ")][2:]   # after the header
    assert len(rows) == 4 and rows[0].startswith("| cINN") and rows[3].startswith("| grey")
    assert rows[1].startswith("| same flow") and rows[2].startswith("| L2 regressor")
    cinn_bpd = float(rows[0].split("|")[2])
    assert 0 < cinn_bpd < 20
    grey = rows[3].split("|")
    assert grey[2].strip() == "—" and grey[5].strip() == "0.00"
    # the quality/colourfulness curve: one cINN row per temperature, T = 0 without spread
    # when the global colour draws are off
    assert main(["evaluate", "colorization", "--data", str(data), "--weights", str(shipped),
                 "-n", "2", "--limit", "2", "--size", "16", "--temperatures", "0", "0.5",
                 "--saturation", "1", "1", "--hue", "0"]) == 0
    curve = capsys.readouterr().out.split("# the cINN at each temperature")[1]
    rows = [ln.split("|") for ln in curve.splitlines() if ln.startswith("| ")][2:]
    assert [r[1].strip() for r in rows] == ["0", "0.5"]
    assert float(rows[0][4]) == 0.0 and float(rows[1][4]) > 0.0
    assert main(["evaluate", "colorization", "--data", str(data), "--weights", str(shipped),
                 "--temperatures", "-1"]) == 1
    assert "cinn: error: --temperatures must be >= 0" in capsys.readouterr().err


# -- shipped weights ---------------------------------------------------------------------
@pytest.mark.parametrize("variant", [None, "muted"])
def test_shipped_weights_colorize_a_skimage_picture(variant):
    from skimage.data import chelsea

    from cinn.apps.common.pretrained import load_model

    model = load_model("colorization", variant=variant)
    assert isinstance(model, ColorizationINN) and model.use_condition
    rgb = chelsea()[::6, ::6]                          # 50x76: not a multiple of 8
    out = colorize(model, rgb, n=2, temperature=0.8, seed=0)
    assert out.shape == (2,) + rgb.shape and out.dtype == np.uint8
    assert np.abs(lab_of(out)[..., 0] - lab_of(rgb)[..., 0]).mean() < 1.0
    assert np.array_equal(out, colorize(model, rgb, n=2, temperature=0.8, seed=0))
