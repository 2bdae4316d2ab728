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
    zero = colorize(model, grey, n=2, temperature=0.0, seed=3)
    assert np.array_equal(zero[0], zero[1])           # temperature 0: the mode-like sample
    assert np.array_equal(zero, colorize(model, grey, n=2, temperature=0.0, seed=3,
                                         saturation=None, hue=0))   # no draw by default
    drawn = colorize(model, grey, n=2, temperature=0.0, seed=3, saturation=(0.6, 2.4),
                     hue=40)
    assert not np.array_equal(drawn[0], drawn[1])     # ... asked for: two global colours


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
    plots = tmp_path / "plots"
    assert main(["evaluate", "colorization", "--data", str(data), "--weights", str(shipped),
                 "-n", "2", "--limit", "2", "--size", "16", "-o", str(plots)]) == 0
    out = capsys.readouterr().out
    assert "no global colour draws" in out                    # off unless asked
    rows = [ln.split("|") for ln in out.split("\n\n")[1].splitlines()
            if ln.startswith("| ")][1:]                       # the posterior table
    names = [r[1].strip() for r in rows if "---" not in r[1]]
    # a flow without global latents: one temperature, by default the local one (0.5)
    assert names[:2] == ["cINN, N = 2, T = 0.5", "cINN, N = 2, T = 1"]
    assert names[-1] == "grey (ab = 0)" and not any("draws" in n for n in names)
    grey = [r for r in rows if r[1].strip() == "grey (ab = 0)"][0]
    assert " [" in grey[2] and grey[3] == grey[2]           # CRPS (also fair) = MAE
    assert grey[4].strip() == "—"                             # no coverage
    bpd = float(out.split("held-out bits/dim of ab (the flow, before any draw): ")[1].split()[0])
    assert 0 < bpd < 20
    assert sorted(p.name for p in plots.iterdir()) == [
        "calibration_colorization_data_t0.5.png", "calibration_colorization_data_t1.png"]
    # the sweep: one cINN row per temperature, T = 0 without spread (no draws) and
    # with the draws when asked (the regressor's rows get them too)
    assert main(["evaluate", "colorization", "--data", str(data), "--weights", str(shipped),
                 "-n", "2", "--limit", "2", "--size", "16", "--temperatures", "0", "0.3",
                 "-o", str(plots)]) == 0
    sweep = capsys.readouterr().out.split("# temperature sweep")[1].split("\n\n")[0]
    rows = [ln.split("|") for ln in sweep.splitlines() if ln.startswith("| ")][2:]
    assert [r[1].strip() for r in rows] == ["0", "0.3", "0.5", "1"]
    assert rows[0][2].strip().startswith("0.")  and float(rows[0][2].split(" [")[0]) < float(
        rows[3][2].split(" [")[0])                           # coverage grows with T
    assert main(["evaluate", "colorization", "--data", str(data), "--weights", str(shipped),
                 "-n", "2", "--limit", "2", "--size", "16", "--hue", "30",
                 "-o", str(plots)]) == 0
    out = capsys.readouterr().out
    assert "global colour draws: saturation 1-1, hue +-30 degrees" in out
    assert "| cINN, N = 2, T = 0.5 + draws |" in out
    assert main(["evaluate", "colorization", "--data", str(data), "--weights", str(shipped),
                 "--temperatures", "-1"]) == 1
    assert "cinn: error: --temperatures must be >= 0" in capsys.readouterr().err


# -- shipped weights ---------------------------------------------------------------------
@pytest.mark.parametrize("variant", [None, "muted", "former"])
def test_shipped_weights_colorize_a_skimage_picture(variant):
    from skimage.data import chelsea

    from cinn.apps import SAVED_MODELS
    from cinn.apps.colorization.infer import has_global, sampling_temperatures
    from cinn.apps.common.pretrained import load_model, weights_path

    if variant == "former":   # the former default: a flow of any size, local latents only
        model = load_model("colorization", SAVED_MODELS / "colorization" / "model.keras")
    else:
        model = load_model("colorization", variant=variant)
    assert isinstance(model, ColorizationINN) and model.use_condition
    # the default: the flow with global latents, sampled at T = 1.15 (global) and 0.5 (local);
    # the others: one temperature, by default the local one
    assert has_global(model) == (variant is None)
    assert sampling_temperatures(model) == ((1.15, 0.5) if variant is None else (0.5, 0.5))
    assert sampling_temperatures(model, 0.8) == ((0.8, 0.5) if variant is None else (0.8, 0.8))
    if variant is None:
        assert weights_path("colorization").name == "colorization_global.keras"
    rgb = chelsea()[::6, ::6]                          # 50x76: not a multiple of 8
    out = colorize(model, rgb, n=2, temperature=0.8, seed=0)
    assert out.shape == (2,) + rgb.shape and out.dtype == np.uint8
    assert np.abs(lab_of(out)[..., 0] - lab_of(rgb)[..., 0]).mean() < 1.0
    assert np.array_equal(out, colorize(model, rgb, n=2, temperature=0.8, seed=0))


# -- the global section: a fixed working size, global latents, guided upsampling --------
GLOBAL_TINY = {**TINY, "size": 16, "global_blocks": 1, "global_hidden": 8, "global_depth": 1,
               "global_features": 4, "global_widths": [4]}


def test_global_model_has_global_latents_and_colorizes_any_size():
    import keras

    keras.utils.set_random_seed(2)
    model = build_model(GLOBAL_TINY)
    assert model.x_shape == (16, 16, 2) and model.global_section["blocks"] == 1
    assert [lv["split"] for lv in model.levels] == ["plain", "plain"]
    randomize(model, scale=0.05, seed=2)
    # the last level's kept half (4x4x8 of 16x16x2) goes through the dense steps
    assert model.latent_shapes((16, 16, 2))[-1] == (4, 4, 8)
    rgb = picture(30, 45, seed=3)                      # not the working size
    # a low temperature: the random weights' ab at T = 1 leave the RGB gamut
    out = colorize(model, rgb, n=2, temperature=0.2, seed=0, saturation=None, hue=0)
    assert out.shape == (2, 30, 45, 3) and out.dtype == np.uint8
    assert np.abs(lab_of(out)[..., 0] - lab_of(rgb)[..., 0]).mean() < 1.0
    assert np.array_equal(out, colorize(model, rgb, n=2, temperature=0.2, seed=0,
                                        saturation=None, hue=0))
    assert np.abs(out[0].astype(int) - out[1]).mean() > 0.1    # two colourings
    with pytest.raises(ValueError, match="needs a flow with a working size"):
        build_model({**GLOBAL_TINY, "size": None})
    with pytest.raises(ValueError, match="multiple of 4"):
        build_model({**GLOBAL_TINY, "size": 18})


def test_compiled_and_chunked_sampling_agree_for_a_global_model():
    from cinn.apps.colorization.infer import l_of, sample_ab

    model = build_model(GLOBAL_TINY)
    randomize(model, scale=0.05, seed=4)
    cond = l_of(picture(20, 28, seed=5))
    a = sample_ab(model, cond, 3, 0.8, 1, compiled=True, saturation=None, hue=0)
    b = sample_ab(model, cond, 3, 0.8, 1, batch_size=2, saturation=None, hue=0)
    assert a.shape == (3, 20, 28, 2)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_guided_upsampling_follows_the_full_resolution_edges():
    from cinn.apps.colorization.guided import guided_upsample, shrink_l

    # a colour edge where L has its edge, at a column that is not on the coarse grid
    h, w, edge = 64, 96, 37
    l_full = np.full((h, w, 1), -0.5, np.float32)
    l_full[:, edge:] = 0.5
    ab_full = np.zeros((h, w, 2), np.float32)
    ab_full[:, edge:] = (0.4, -0.3)
    small = cv2.resize(ab_full, (24, 16), interpolation=cv2.INTER_AREA)
    bicubic = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    guided = guided_upsample(small, l_full)
    assert guided.shape == (h, w, 2) and guided.dtype == np.float32
    assert np.abs(guided - ab_full).mean() < 0.85 * np.abs(bicubic - ab_full).mean()
    flat = guided_upsample(np.full((8, 8, 2), 0.2, np.float32), l_full)
    np.testing.assert_allclose(flat, 0.2, atol=1e-5)  # a constant stays constant
    assert shrink_l(l_full, 16).shape == (16, 16, 1)


def test_levels_init_copies_the_local_part_of_a_trained_flow(tmp_path):
    local = build_model({**TINY, "levels": 2})
    randomize(local, scale=0.05, seed=6)
    path = tmp_path / "local.keras"
    local.save(path)
    model = build_model({**GLOBAL_TINY, "levels_init": str(path)})
    src = {w.path: to_np(w) for w in local.weights}
    for layers, theirs in zip(model.flow_layers, local.flow_layers):
        for a, b in zip(layers, theirs):
            for u, v in zip(a.weights, b.weights):
                np.testing.assert_array_equal(to_np(u), to_np(v))
    stem = model.cond_net.local.stem
    np.testing.assert_array_equal(to_np(stem.kernel), src[local.cond_net.stem.kernel.path])
    # the global steps start as identities (zero-initialised couplings)
    coupling = [layer for layer in model.global_layers if "coupling" in layer.name][0]
    assert np.abs(to_np(coupling.params.proj.kernel)).max() == 0


def test_whole_picture_datasets_from_several_folders(tmp_path):
    from cinn.apps.colorization.data import make_datasets

    folders = [tmp_path / "a", tmp_path / "b"]
    for k, folder in enumerate(folders):
        folder.mkdir()
        for i in range(3):
            cv2.imwrite(str(folder / f"c{i}.png"), picture(40 + 10 * k, 60, seed=10 * k + i))
    cfg = {"data": {"crop": 16, "batch_size": 4, "steps_per_epoch": 2, "val_images": 1,
                    "whole": True, "min_side": 0.5}}
    train, val = make_datasets(folders, cfg, seed=0)
    assert len(train.images) + 1 == 6                  # both folders, one held out
    (x, c), = train[0]
    assert x.shape == (4, 16, 16, 2) and c.shape == (4, 16, 16, 1)
    (xv, cv), = val[0]
    assert xv.shape == (1, 16, 16, 2)
    with pytest.raises(ValueError, match="data.min_side"):
        make_datasets(folders, {"data": {**cfg["data"], "min_side": 0}})


def test_train_a_global_flow_on_two_folders_then_colorize(tmp_path, capsys):
    folders = [tmp_path / "a", tmp_path / "b"]
    for k, folder in enumerate(folders):
        folder.mkdir()
        for i in range(3):
            cv2.imwrite(str(folder / f"c{i}.png"), picture(24, 40, seed=20 * k + i))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "model: {size: 16, levels: 2, blocks: 1, subnet: {hidden: 8, depth: 1}, "
        "cond_channels: 4, cond_hidden: 8, global_blocks: 1, global_hidden: 8, "
        "global_depth: 1, global_features: 4, global_widths: [4]}\n"
        "data: {whole: true, crop: 16, batch_size: 4, steps_per_epoch: 2, val_images: 1}\n"
        "train: {epochs: 1, learning_rate: 0.001, tensorboard: false}\n")
    run = tmp_path / "run"
    assert main(["train", "colorization", "--data", *map(str, folders), "--config", str(cfg),
                 "--out", str(run)]) == 0
    assert "a, " in capsys.readouterr().out            # both folders were read
    out = tmp_path / "out"
    assert main(["colorize", str(folders[0] / "c0.png"), "--weights", str(run), "-n", "2",
                 "-o", str(out)]) == 0
    grid = cv2.imread(str(out / "c0_colorized.png"))
    assert grid.shape[0] == 24
    assert main(["colorize", str(folders[0] / "c0.png"), "--weights", str(run), "-n", "2",
                 "--local-temperature", "0.5", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["colorize", str(folders[0] / "c0.png"), "--weights", str(run),
                 "--local-temperature", "-1", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cinn: error: --local-temperature: the temperature must be"), err


def test_global_model_gives_a_density_of_photos_of_any_size():
    import keras

    model = build_model(GLOBAL_TINY)
    randomize(model, scale=0.02, seed=7)
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((1, 32, 48, 2))).astype("float32")
    c = rng.uniform(-1, 1, (1, 32, 48, 1)).astype("float32")
    small = [keras.ops.image.resize(t, (16, 16), antialias=True) for t in (x, c)]
    lp = to_np(model.log_prob(x, c))
    assert np.isfinite(lp).all()
    np.testing.assert_allclose(lp, to_np(model.log_prob(*small)), rtol=1e-5)


def test_local_temperature_scales_all_but_the_global_latents():
    from cinn.apps.colorization.infer import l_of, latent_scale, sample_ab

    model = build_model(GLOBAL_TINY)
    randomize(model, scale=0.05, seed=8)
    scale = latent_scale(model, (16, 16, 2), 1.0, 0.0)
    assert scale.shape == (512,) and scale[-128:].min() == 1 and scale[:-128].max() == 0
    cond = l_of(picture(20, 20, seed=9))
    only_global = sample_ab(model, cond, 2, 1.0, 0, saturation=None, hue=0,
                            local_temperature=0.0)
    assert np.abs(only_global[0] - only_global[1]).max() > 1e-3    # the global latents
    np.testing.assert_allclose(
        only_global, sample_ab(model, cond, 2, 1.0, 0, compiled=True, saturation=None,
                               hue=0, local_temperature=0.0), atol=1e-4)
    mode = sample_ab(model, cond, 2, 0.0, 0, saturation=None, hue=0, local_temperature=0.0)
    np.testing.assert_allclose(mode[0], mode[1], atol=1e-6)
    local = build_model(TINY)                          # no global section: every latent
    assert latent_scale(local, (16, 16, 2), 1.0, 0.3).max() == np.float32(0.3)
