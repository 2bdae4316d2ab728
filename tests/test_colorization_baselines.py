"""Colorization designs and baselines: the U-Net conditioning network (shapes at odd
sizes, a receptive field covering the input), the flow built on it, and the L2
regressor (training through ``cinn.training.train``, save/load, its rows in the
evaluation's posterior report, with and without the global colour draws)."""
import cv2
import keras
import numpy as np
import pytest

from cinn.apps.colorization.model import build_model
from cinn.errors import CinnError
from cinn.conditioning import UNetConditionNet
from helpers import randomize, to_np

UNET = {"levels": 2, "blocks": 1, "subnet": {"hidden": 8, "depth": 1}, "cond_net": "unet",
        "cond_widths": [8, 8, 8], "cond_channels": 4}


def picture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 4), max(2, w // 4), 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def test_unet_shapes_and_receptive_field():
    c = np.random.default_rng(0).standard_normal((2, 20, 28, 4)).astype("float32")
    big = np.zeros((1, 64, 64, 4), "float32")
    bumped = big.copy()
    bumped[0, 0, 0] = 10.0
    for context in (True, False):
        net = UNetConditionNet([0, -1, -2], channels=[3, 4, 5], widths=[8, 8, 8],
                               global_context=context)
        feats = [to_np(f) for f in net(c)]
        assert [f.shape for f in feats] == [(2, 20, 28, 3), (2, 10, 14, 4), (2, 5, 7, 5)]
        # the feature at the centre of the finest level reacts to a far corner pixel
        # only through the global context (the convolutions see about 45 pixels)
        randomize(net, 0.3)
        centre = [to_np(net(x)[0])[0, 32, 32] for x in (big, bumped)]
        assert (np.abs(centre[0] - centre[1]).max() > 1e-6) == context
    again = UNetConditionNet.from_config(net.get_config())
    assert again.get_config() == net.get_config()
    with pytest.raises(ValueError, match="scales must lie"):
        UNetConditionNet([1, 0], widths=[8, 8])


def test_flow_with_unet_condition_inverts():
    model = build_model(UNET)
    randomize(model, 0.05)
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 24, 40, 2))).astype("float32")
    c = rng.uniform(-1, 1, (2, 24, 40, 1)).astype("float32")
    z, _ = model.encode(x, c)
    np.testing.assert_allclose(to_np(model.decode(z, c)), x, atol=1e-4)


def test_regressor_trains_saves_and_is_evaluated(tmp_path):
    from cinn.apps.colorization import evaluate as E
    from cinn.apps.colorization.regressor import ColorizationRegressor
    from cinn.apps.common.pretrained import load_model
    from cinn.training import train

    keras.utils.set_random_seed(0)
    reg = build_model({**UNET, "type": "regressor", "head_hidden": 8})
    assert isinstance(reg, ColorizationRegressor) and reg.multiple == 4
    rng = np.random.default_rng(0)
    c = rng.uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
    x = np.concatenate([0.3 * c, -0.2 * c], -1).astype("float32")   # ab a function of L
    history = train(reg, (x, c), epochs=3, batch_size=8, learning_rate=1e-2, verbose=0,
                    out_dir=tmp_path / "run", tensorboard=False)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    loaded = load_model("colorization", tmp_path / "run")
    assert isinstance(loaded, ColorizationRegressor)
    assert all(np.array_equal(to_np(a), to_np(b)) for a, b in zip(reg.weights, loaded.weights))
    s = to_np(loaded.sample(c[:2], n=3))
    assert s.shape == (2, 3, 16, 16, 2) and np.array_equal(s[:, 0], s[:, 2])
    from cinn.apps.colorization.infer import colorize

    out = colorize(loaded, picture(20, 28), n=2, temperature=0.8, seed=0,   # padded to 4s
                   saturation=None, hue=0)               # without the global colour draws
    assert out.shape == (2, 20, 28, 3) and np.array_equal(out[0], out[1])

    flow = build_model(UNET)
    randomize(flow, 0.05)
    images = [picture(16, 24, seed=i) for i in range(2)]
    report, extras = E.evaluate_images(flow, images, n=2, temperature=1.0, seed=0,
                                       regressor=loaded)
    assert list(report.methods) == ["flow_t1", "l2", "grey"]     # no draws unless asked
    l2 = report.methods["l2"].images[0]
    c0 = E.condition(images[0])[0]
    pred = E.colourings(c0, E.regressor_ab(loaded, c0))
    assert l2["crps"] == pytest.approx(np.abs(pred[0].astype(float) - images[0]).mean())
    assert l2["psnr_best"] == l2["psnr_single"] and l2["range_coverage"] is None
    assert extras["diversity"]["l2"] == 0.0 and np.isfinite(extras["bpd"][0])
    cinn = report.methods["flow_t1"].images[0]
    assert cinn["psnr_best"] >= cinn["psnr_single"] and cinn["ssim_best"] >= cinn["ssim_single"]
    # the flow's own samples: the same as colorize without the global colour draws
    own = colorize(flow, images[1], n=2, temperature=1.0, seed=1, saturation=None, hue=0)
    from cinn.diagnostics import crps

    assert report.methods["flow_t1"].images[1]["crps"] == pytest.approx(
        float(np.mean(crps(own, images[1]))), rel=1e-3)
    # draws when asked: the flow's and the regressor's ("regressor + draws", N colourings)
    drawn, extras = E.evaluate_images(flow, images, n=4, temperature=0.5, seed=0,
                                      regressor=loaded, saturation=(0.5, 2.0), hue=30.0)
    assert list(drawn.methods) == ["flow_t0.5", "flow_t1", "l2", "l2_draws", "grey"]
    assert drawn.methods["l2_draws"].n == 4 and extras["diversity"]["l2_draws"] > 0
    assert drawn.methods["l2"].images[0]["crps"] == pytest.approx(l2["crps"])
    table = drawn.tables(["flow_t0.5", "l2", "l2_draws", "grey"])
    lines = [ln for ln in table.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert [ln.split("|")[1].strip() for ln in lines[1:5]] == [
        "cINN, N = 4, T = 0.5 + draws", E.NAMES["l2"], f"{E.NAMES['l2_draws']}, N = 4",
        E.NAMES["grey"]]
    cells = lines[2].split("|")
    assert cells[3] == cells[2]                               # fair CRPS of one answer: MAE
    assert cells[4].strip() == "—"                            # no coverage for one answer


def test_evaluate_colour_draws_off_unless_asked():
    from argparse import Namespace

    from cinn.apps.colorization.evaluate import colour_draws
    from cinn.errors import CinnError

    assert colour_draws(Namespace(saturation=None, hue=None)) == (None, 0.0)
    assert colour_draws(Namespace(saturation=[0.6, 2.4], hue=None)) == ((0.6, 2.4), 0.0)
    assert colour_draws(Namespace(saturation=None, hue=40)) == (None, 40.0)
    with pytest.raises(CinnError, match="--hue"):
        colour_draws(Namespace(saturation=None, hue=400))


def test_flow_around_the_regressor_mean(tmp_path):
    """``mean_head``: the flow models ab minus the head's prediction (a shift, log-det 0);
    ``mean_init`` starts it from a regressor's conditioning net and head; samples and
    weights survive a save and load."""
    from cinn.apps.common.pretrained import load_model

    reg = build_model({**UNET, "type": "regressor", "head_hidden": 8})
    randomize(reg, 0.1)
    reg.save(tmp_path / "l2.keras")
    cfg = {**UNET, "head_hidden": 8, "mean_head": True, "mean_init": str(tmp_path / "l2.keras")}
    flow = build_model(cfg)
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 16, 24, 2))).astype("float32")
    c = rng.uniform(-1, 1, (2, 16, 24, 1)).astype("float32")
    feats = flow.condition_features(c)
    mean = to_np(flow.mean_net(feats))
    np.testing.assert_array_equal(mean, to_np(reg.predict_ab(c)))
    assert np.abs(mean).max() > 1e-3
    for i, layer in enumerate(lyr for level in flow.flow_layers for lyr in level):
        randomize(layer, 0.05, seed=i)
    z, log_det = flow.encode(x, c)
    np.testing.assert_allclose(to_np(flow.decode(z, c)), x, atol=1e-4)
    head, flow.mean_net = flow.mean_net, None      # the same flow on x - mean
    z0, log_det0 = flow.encode(x - mean, c)
    flow.mean_net = head
    np.testing.assert_allclose(to_np(z), to_np(z0), atol=1e-5)
    np.testing.assert_allclose(to_np(log_det), to_np(log_det0), atol=1e-4)

    flow.save(tmp_path / "flow.keras")
    loaded = load_model("colorization", tmp_path / "flow.keras")
    assert np.array_equal(to_np(loaded.sample(c, n=2, temperature=0.7, seed=3)),
                          to_np(flow.sample(c, n=2, temperature=0.7, seed=3)))

    with pytest.raises(ValueError, match="must be a colorization regressor"):
        build_model({**cfg, "mean_init": str(tmp_path / "flow.keras")})
    with pytest.raises(ValueError, match="does not match"):
        build_model({**cfg, "cond_widths": [8, 8, 16]})
    with pytest.raises(CinnError, match="no such model file"):
        build_model({**cfg, "mean_init": str(tmp_path / "missing.keras")})
    with pytest.raises(ValueError, match="needs mean_head: true"):
        build_model({**UNET, "mean_init": str(tmp_path / "l2.keras")})


def test_flow_around_a_mean_decodes_the_same_in_strips():
    """The mean head reaches further than the flow's inverse: the strips' halo
    (``receptive_radius``) covers it, and strips give the one-pass samples."""
    from cinn.strips import receptive_radius

    flow = build_model({**UNET, "levels": 3, "cond_widths": [8, 8, 8, 8], "head_hidden": 8,
                        "mean_head": True})
    randomize(flow, 0.1)
    assert flow.mean_net.receptive_radius() == 2 * (2 + 2 ** 3)
    halo = receptive_radius(flow)
    assert halo >= flow.mean_net.receptive_radius()
    c = np.random.default_rng(2).random((1, 96, 24, 1)).astype("float32") - 0.5
    one = np.concatenate([to_np(x) for x in flow.sample_chunks(c, n=2, seed=1)])
    strips = np.concatenate([to_np(x) for x in flow.sample_chunks(c, n=2, seed=1,
                                                                  strips=(16, halo))])
    np.testing.assert_allclose(strips, one, rtol=1e-5, atol=1e-5)
