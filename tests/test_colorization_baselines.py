"""Colorization designs and baselines: the U-Net conditioning network (shapes at odd
sizes, a receptive field covering the input), the flow built on it, and the L2
regressor (training through ``cinn.training.train``, save/load, its row in the
evaluation)."""
import cv2
import keras
import numpy as np
import pytest

from apps.colorization.model import build_model
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
    from apps.colorization import evaluate as E
    from apps.colorization.regressor import ColorizationRegressor
    from apps.common.pretrained import load_model
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
    from apps.colorization.infer import colorize

    out = colorize(loaded, picture(20, 28), n=2, temperature=0.8, seed=0)   # padded to 4s
    assert out.shape == (2, 20, 28, 3) and np.array_equal(out[0], out[1])

    flow = build_model(UNET)
    randomize(flow, 0.05)
    images = [picture(16, 24, seed=i) for i in range(2)]
    rows = E.evaluate_images(flow, images, n=2, temperature=1.0, seed=0, regressor=loaded)
    assert set(rows) == {"cinn", "l2", "grey"}
    l2 = rows["l2"][0]
    assert l2["psnr"] == l2["psnr_single"] and l2["diversity"] == 0.0 and np.isnan(l2["bpd"])
    cinn = rows["cinn"][0]
    assert cinn["psnr"] >= cinn["psnr_single"] and cinn["ssim"] >= cinn["ssim_single"]
    table = E.format_table(rows, 30.0, missing=[("uncond", "nowhere.keras")])
    lines = table.splitlines()
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == [
        E.NAMES["cinn"], E.NAMES["uncond"], E.NAMES["l2"], E.NAMES["grey"]]
    assert "nowhere.keras" in lines[3] and len(lines[4].split("|")) == 10
