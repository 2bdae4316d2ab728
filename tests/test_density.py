"""Image density (``cinn.density``), MAP inpainting (``cinn.map_inpainting``) and the
two density examples, on tiny settings (no data from /work/shared)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from cinn.density import (bits_per_dim, dequantize, image_flow, nll_nats, one_hot,
                          pixel_centres, standard_normal_nll)
from cinn.density import test_bits_per_dim as bpd_of
from cinn.map_inpainting import inpaint_map, inpaint_posterior, psnr_hidden
from conftest import examples_once

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _digits(n, seed=0, size=8):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size)).astype(np.uint8)


def _perturb(model, scale=0.02, seed=0):
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(np.asarray(w) + scale * rng.standard_normal(w.shape).astype(np.float32))


# -- the bits/dim convention -----------------------------------------------------
def test_bits_per_dim_of_a_standard_normal_by_closed_form():
    # an all-zero image under N(0, I): -log p = D/2 log(2 pi) nats; in the [0, 256)
    # pixel space (log 256 per value more) and in bits per dimension:
    dims = 784
    expected = (0.5 * math.log(2 * math.pi) + math.log(256)) / math.log(2)
    assert bits_per_dim(0.5 * dims * math.log(2 * math.pi), dims) == pytest.approx(expected)
    assert expected == pytest.approx(9.32574, abs=1e-5)
    x = np.random.default_rng(0).standard_normal((5, 28, 28, 1))
    manual = (standard_normal_nll(x) / dims + 8 * math.log(2)) / math.log(2)
    np.testing.assert_allclose(bits_per_dim(standard_normal_nll(x), dims), manual)


def test_an_untrained_glow_flow_is_the_standard_normal_density():
    # squeezes, orthogonal 1x1 convolutions, identity couplings and priors: |z| = |x|
    flow = image_flow("glow", (8, 8, 1), levels=2, steps=2, hidden=8)
    x = dequantize(_digits(4))
    np.testing.assert_allclose(nll_nats(flow, x), standard_normal_nll(x), rtol=1e-5)
    np.testing.assert_allclose(bpd_of(flow, _digits(4)),
                               bits_per_dim(standard_normal_nll(x), 64), rtol=1e-5)
    # the training loss of ConditionalINN(bin_width=1/256) is the same convention
    z, log_det = flow.encode(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(flow.bits_per_dim(z, log_det)),
                               bits_per_dim(standard_normal_nll(x), 64), rtol=1e-5)


def test_dequantization_fills_each_pixel_bin_and_stays_below_one():
    k = np.tile(np.arange(256, dtype=np.uint8).reshape(1, 16, 16), (40, 1, 1))
    x = dequantize(k, seed=1)
    assert x.shape == (40, 16, 16, 1) and x.dtype == np.float32
    lo = k[..., None] / 256.0
    assert (x >= lo).all() and (x < lo + 1 / 256).all() and x.max() < 1.0
    offsets = x * 256 - k[..., None]
    assert offsets.min() < 0.02 and offsets.max() > 0.98  # the whole bin, not one point
    np.testing.assert_array_equal(x, dequantize(k, seed=1))
    assert not np.array_equal(x, dequantize(k, seed=2))
    np.testing.assert_allclose(pixel_centres(k), (k[..., None] + 0.5) / 256)


# -- configurations ----------------------------------------------------------------
def test_realnvp_configuration_uses_checkerboard_and_channel_masks_and_inverts():
    from cinn.blocks import MaskedAffineCoupling, Split, Squeeze

    flow = image_flow("realnvp", (8, 8, 1), levels=2, steps=2, hidden=8, seed=1)
    layers = [l for level in flow.flow_layers for l in level]
    masks = [(l.mask, l.parity) for l in layers if isinstance(l, MaskedAffineCoupling)]
    assert ("checkerboard", 0) in masks and ("checkerboard", 1) in masks
    assert ("channel", 0) in masks and ("channel", 1) in masks
    assert any(isinstance(l, Squeeze) for l in layers)
    assert any(isinstance(s, Split) for s in flow.split_layers)
    _perturb(flow)
    x = dequantize(_digits(3))
    z, log_det = flow.encode(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(flow.decode(z)), x, atol=1e-4)
    assert np.isfinite(keras.ops.convert_to_numpy(log_det)).all()


def test_class_conditional_flow_depends_on_the_label_and_survives_a_keras_file(tmp_path):
    flow = image_flow("glow", (8, 8, 1), levels=2, steps=1, hidden=8, num_classes=10)
    _perturb(flow)
    x = dequantize(_digits(3))
    a = nll_nats(flow, x, one_hot([1, 2, 3]))
    b = nll_nats(flow, x, one_hot([4, 5, 6]))
    assert np.abs(a - b).max() > 1e-3
    flow.save(tmp_path / "f.keras")
    again = keras.saving.load_model(tmp_path / "f.keras", compile=False)
    np.testing.assert_allclose(nll_nats(again, x, one_hot([1, 2, 3])), a, rtol=1e-5)
    z, _ = flow.encode(x, one_hot([1, 2, 3]))
    back = flow.decode(z, one_hot([1, 2, 3]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(back), x, atol=1e-4)


@pytest.mark.parametrize("coupling", ["affine", "checkerboard", "channel", "spline", "maf"])
def test_every_level_coupling_inverts_on_vectors(coupling):
    from cinn import ConditionalINN

    flow = ConditionalINN((4,), None, levels=[{"blocks": 2, "coupling": coupling,
                                               "permute": None,
                                               "subnet": {"type": "dense", "hidden": 8}}])
    _perturb(flow, 0.1)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    z, log_det = flow.encode(x)
    back, inv_log_det = flow.decode_and_log_det(z)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(back), x, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inv_log_det),
                               -keras.ops.convert_to_numpy(log_det), atol=1e-4)
    assert np.abs(keras.ops.convert_to_numpy(z) - x).max() > 1e-3  # not the identity


def test_unknown_level_coupling_is_refused():
    from cinn import ConditionalINN

    with pytest.raises(ValueError, match="coupling must be one of"):
        ConditionalINN((4,), None, levels=[{"coupling": "glow"}])


# -- MAP inpainting ------------------------------------------------------------------
def test_map_inpainting_keeps_observed_pixels_and_raises_log_p():
    flow = image_flow("glow", (8, 8, 1), levels=2, steps=1, hidden=8)
    x = dequantize(_digits(6))
    flow.initialize(x)
    _perturb(flow, 0.01)
    mask = np.random.default_rng(3).random(x.shape) < 0.5
    out, trace = inpaint_map(flow, x, mask, steps=15, lr=0.03, history=True)
    np.testing.assert_array_equal(out[mask], x[mask])        # exactly, not approximately
    assert len(trace) == 16 and trace[-1] > trace[0] + 0.3
    assert not np.allclose(out[~mask], x[~mask])
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_map_inpainting_finds_the_mode_of_a_standard_normal_flow():
    # untrained (identity ActNorm, orthogonal 1x1 convs): log p = -|x|^2/2 + const,
    # whose maximum over hidden pixels in [0, 1] is 0
    flow = image_flow("glow", (8, 8, 1), levels=2, steps=1, hidden=8)
    x = dequantize(_digits(2))
    mask = np.zeros(x.shape, bool)
    mask[:, :4] = True
    out = inpaint_map(flow, x, mask, steps=60, lr=0.05, init=0.5)
    assert np.abs(out[~mask]).max() < 1e-3
    np.testing.assert_array_equal(out[mask], x[mask])


def test_posterior_inpainting_samples_the_known_conditional_of_a_gaussian_flow():
    # untrained Glow: x = Q z with Q orthogonal, so p(x) = N(0, I) and the hidden
    # pixels are N(0, 1) whatever is observed: 100 chains from one start must spread
    # to that mean and width
    flow = image_flow("glow", (8, 8, 1), levels=2, steps=1, hidden=8)
    x = dequantize(_digits(2))
    mask = np.zeros(x.shape, bool)
    mask[:, :4] = True
    out, info = inpaint_posterior(flow, x, mask, n=100, steps=600, sigma=0.1, init=0.5,
                                  value_range=None, history=True, seed=1)
    assert out.shape == (2, 100, 8, 8, 1)
    np.testing.assert_array_equal(out[:, :, :4], np.repeat(x[:, None, :4], 100, 1))
    hidden = out[:, :, 4:]
    assert abs(hidden.mean()) < 0.15 and abs(hidden.std() - 1) < 0.1
    assert 0.45 < info["accept"] < 0.7 and len(info["log_target"]) == 600
    seen = []
    clipped = inpaint_posterior(flow, x[:1], mask[:1], n=3, steps=6, sigma=0.1, seed=2,
                                progress=lambda t, total, acc: seen.append((t, total)))
    assert clipped.min() >= 0 and clipped.max() <= 1 and seen == [(t, 6) for t in range(1, 7)]
    np.testing.assert_array_equal(                           # seeded
        inpaint_posterior(flow, x[:1], mask[:1], n=3, steps=6, sigma=0.1, seed=2), clipped)
    # a start per chain: chain k of image i starts from init[i, k], here far apart
    starts = np.stack([np.full(x.shape, v, np.float32) for v in (-3.0, 3.0)], 1)
    first = inpaint_posterior(flow, x, mask, n=2, steps=0, init=starts, value_range=None)
    np.testing.assert_allclose(first[:, :, 4:], starts[:, :, 4:], atol=1e-4)
    np.testing.assert_array_equal(first[:, :, :4], np.repeat(x[:, None, :4], 2, 1))
    with pytest.raises(ValueError, match=r"shape \(2, 3, 8, 8, 1\)"):
        inpaint_posterior(flow, x, mask, n=3, steps=0, init=starts)
    with pytest.raises(ValueError, match="sigma"):
        inpaint_posterior(flow, x, mask, sigma=0)
    with pytest.raises(ValueError, match="burn_in"):
        inpaint_posterior(flow, x, mask, n=0)


def test_psnr_counts_hidden_pixels_only():
    x = np.zeros((2, 4, 4, 1), np.float32)
    mask = np.zeros_like(x, bool)
    mask[:, :2] = True
    y = np.where(mask, 0.9, 0.1).astype(np.float32)  # observed pixels far off: ignored
    np.testing.assert_allclose(psnr_hidden(x, y, mask), [20.0, 20.0], atol=1e-6)


# -- the examples, tiny -----------------------------------------------------------------
def _run(*args, timeout=900):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=ROOT)


@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(0)
    d = {"x_train": rng.integers(0, 256, (512, 28, 28)).astype(np.uint8),
         "y_train": rng.integers(0, 10, 512).astype(np.uint8),
         "x_test": rng.integers(0, 256, (256, 28, 28)).astype(np.uint8),
         "y_test": np.arange(256).astype(np.uint8) % 10}
    np.savez(tmp_path / "mnist.npz", **d)
    return tmp_path


@examples_once
def test_mnist_density_trains_resumes_evaluates_and_draws(fake_mnist, tmp_path):
    script = ROOT / "examples" / "mnist_density.py"
    run, figs = tmp_path / "run", tmp_path / "figs"
    shipped = tmp_path / "shipped.keras"
    out = _run(script, "--smoke", "--data-root", fake_mnist, "--out", run, "--epochs", "1",
               "--figures", figs, "--export", shipped)
    assert out.returncode == 0, out.stderr[-3000:]
    bpd = json.loads((run / "result.json").read_text())["test_bpd"]
    assert "bits/dim" in out.stdout and "| 90% random |" in out.stdout
    assert "MALA step 6/6" in out.stdout                       # long work shows progress
    assert cv2.imread(str(figs / "mnist_map_inpainting.png")) is not None
    post = cv2.imread(str(figs / "mnist_posterior_inpainting.png"))
    assert post is not None and post.shape[1] > 2 * 7 * 56      # 2 digits x 7 columns
    assert cv2.imread(str(figs / "mnist_bpd_curve.png")) is not None
    # killed after epoch 1's checkpoint, before its row: the resumed run writes it
    history = run / "history.csv"
    first = history.read_text().strip().splitlines()
    history.write_text(first[0] + "\n")
    out = _run(script, "--smoke", "--data-root", fake_mnist, "--out", run, "--epochs", "2",
               "--lr", "5e-4", "--clipnorm", "100")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming from checkpoint" in out.stdout and "its row was missing" in out.stdout
    rows = history.read_text().strip().splitlines()
    assert len(rows) == 3 and rows[-1].startswith("2,32,")  # header + 2 epochs, 16 steps each
    assert rows[1] == first[1]                                # the same weights, clock, loss
    cfg = json.loads((run / "config.json").read_text())   # a gentler resume is recorded
    assert (cfg["lr"], cfg["clipnorm"]) == (5e-4, 100)
    assert cfg["changes"] == [{"from_step": 16, "epochs": 2, "lr": 5e-4, "clipnorm": 100}]
    # the exported model file (no optimizer state) evaluates as the run did after epoch 1
    assert shipped.stat().st_size < 0.8 * (run / "model.keras").stat().st_size
    out = _run(script, "--smoke", "--data-root", fake_mnist, "--weights", shipped,
               "--out", tmp_path / "res")
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((tmp_path / "res" / "result.json").read_text())["test_bpd"] == bpd


@examples_once
def test_mnist_density_conditional_draws_samples_and_style_transfer(fake_mnist, tmp_path):
    figs = tmp_path / "figs"
    out = _run(ROOT / "examples" / "mnist_density.py", "--smoke", "--conditional",
               "--data-root", fake_mnist, "--out", tmp_path / "run", "--epochs", "1",
               "--figures", figs)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "given the label" in out.stdout
    grid = cv2.imread(str(figs / "mnist_cond_samples.png"))
    style = cv2.imread(str(figs / "mnist_style_transfer.png"))
    assert grid is not None and style is not None
    assert grid.shape[0] > 10 * 56 and style.shape[1] > 12 * 56


@examples_once
def test_mnist_density_bad_input_is_one_error_line(tmp_path):
    out = _run(ROOT / "examples" / "mnist_density.py", "--data-root", tmp_path,
               "--out", tmp_path / "run", "--smoke", timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("cinn: error:")
    assert "mnist.npz" in out.stderr and "Traceback" not in out.stderr
    for flag in ("--init", "--weights"):
        out = _run(ROOT / "examples" / "mnist_density.py", "--data-root", tmp_path,
                   "--out", tmp_path / "run", flag, tmp_path / "none.keras", timeout=300)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr.strip().splitlines()[-1] == (
            f"cinn: error: {flag} {tmp_path / 'none.keras'}: no such model file")


@examples_once
def test_mnist_density_divergence_is_one_error_line(fake_mnist, tmp_path):
    out = _run(ROOT / "examples" / "mnist_density.py", "--smoke", "--data-root", fake_mnist,
               "--out", tmp_path / "run", "--epochs", "1", "--lr", "1e3", timeout=300)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("cinn: error: non-finite loss") and "learning rate" in last
    assert "Traceback" not in out.stderr


@examples_once
def test_density_2d_draws_its_figures(tmp_path):
    out = _run(ROOT / "examples" / "density_2d.py", "--smoke", "--data", "moons", "-o", tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| moons |" in out.stdout
    assert cv2.imread(str(tmp_path / "density_2d.png")) is not None
    assert cv2.imread(str(tmp_path / "density_2d_layers.png")) is not None
    bad = _run(ROOT / "examples" / "density_2d.py", "--data", "spiral", "-o", tmp_path,
               timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("cinn: error:")
