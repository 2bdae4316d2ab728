"""Every invertible block: invertibility, log-det against autodiff, identity at init,
clear shape errors, config round trip."""
import numpy as np
import pytest
from helpers import jacobian_logdet, randomize, to_np
from keras import ops

from cinn import blocks as B

COND_CH = 3


def make(name):
    """(block, x shape, needs condition) for a tiny NHWC input."""
    return {
        "coupling": (lambda: B.AffineCoupling({"hidden": 8}), (4, 4, 4), True),
        "coupling_dense": (lambda: B.AffineCoupling({"type": "dense", "hidden": 8}), (5,), True),
        "injector": (lambda: B.AffineInjector({"hidden": 8}), (4, 4, 2), True),
        "actnorm": (lambda: B.ActNorm(), (4, 4, 2), False),
        "conv1x1": (lambda: B.InvertibleConv1x1(seed=1), (4, 4, 3), False),
        "permutation": (lambda: B.RandomPermutation(seed=1), (4, 4, 3), False),
        "squeeze": (lambda: B.Squeeze(), (4, 4, 2), False),
        "haar": (lambda: B.HaarDownsample(), (4, 4, 2), False),
        "split_plain": (lambda: B.Split(), (4, 4, 4), False),
        "split_prior": (lambda: B.Split(prior=True, subnet={"hidden": 8}), (4, 4, 4), True),
    }[name]


NAMES = ["coupling", "coupling_dense", "injector", "actnorm", "conv1x1", "permutation",
         "squeeze", "haar", "split_plain", "split_prior"]


def built_block(name, batch=2, seed=0):
    factory, shape, cond = make(name)
    block = factory()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + shape).astype("float32")
    c = rng.standard_normal((batch,) + shape[:-1] + (COND_CH,)).astype("float32") if cond else None
    block(x, c)
    randomize(block, 0.3, seed)
    return block, x, c


def forward(block, x, c):
    y, ld = block(x, c)
    if isinstance(block, B.Split):
        y = ops.concatenate(list(y), axis=-1)
    return y, ld


def inverse(block, y, c):
    if isinstance(block, B.Split):
        keep = block.keep
        y = (y[..., :keep], y[..., keep:])
    return block(y, c, inverse=True)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [0.0, 1e-3, 1.0, 10.0])
def test_invertible(name, scale):
    block, x, c = built_block(name)
    x = x * scale
    y, ld = forward(block, x, c)
    xr, ld_inv = inverse(block, y, c)
    assert to_np(xr).shape == x.shape
    np.testing.assert_allclose(to_np(xr), x, atol=1e-4, rtol=0)
    np.testing.assert_allclose(to_np(ld_inv), -to_np(ld), atol=1e-4, rtol=1e-5)
    assert to_np(ld).shape == (x.shape[0],)


@pytest.mark.parametrize("name", NAMES)
def test_log_det_matches_autodiff_jacobian(name):
    block, x, c = built_block(name, batch=1)
    y, ld = forward(block, x, c)
    expected = jacobian_logdet(lambda v: forward(block, v, c)[0], x)
    assert abs(float(to_np(ld)[0]) - expected) < 1e-3, (float(to_np(ld)[0]), expected)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_log_det_matches_autodiff_jacobian(name):
    block, x, c = built_block(name, batch=1)
    y = to_np(forward(block, x, c)[0])
    _, ld_inv = inverse(block, y, c)
    expected = jacobian_logdet(lambda v: inverse(block, v, c)[0], y)
    assert abs(float(to_np(ld_inv)[0]) - expected) < 1e-3


@pytest.mark.parametrize("name", ["coupling", "coupling_dense", "injector", "split_prior"])
def test_fresh_block_is_identity(name):
    factory, shape, cond = make(name)
    block = factory()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2,) + shape).astype("float32")
    c = rng.standard_normal((2,) + shape[:-1] + (COND_CH,)).astype("float32")
    y, ld = forward(block, x, c)
    np.testing.assert_array_equal(to_np(y), x)
    np.testing.assert_array_equal(to_np(ld), np.zeros(2, "float32"))


def test_soft_clamp_bounds_scales():
    s = np.array([-1e6, -10.0, 0.0, 0.5, 10.0, 1e6], "float32")
    out = to_np(B.soft_clamp(s, 2.0))
    assert np.all(np.abs(out) < 2.0)
    assert out[2] == 0.0 and abs(out[3] - 2 / np.pi * 0.5) < 0.01  # slope 2/pi at 0
    assert np.all(np.diff(out) > 0)


def test_coupling_scale_never_below_clamp_floor():
    block, x, c = built_block("coupling")
    for v in block.trainable_weights:
        v.assign(to_np(v) * 1e4)  # absurd weights: the scale must stay in [e^-2, e^2]
    y, ld = block(x * 100, c)
    xr, _ = block(y, c, inverse=True)
    assert np.all(np.isfinite(to_np(y))) and np.all(np.isfinite(to_np(xr)))
    assert np.all(np.abs(to_np(ld)) <= 2.0 * x[0].size / 2 + 1e-3)


def test_actnorm_data_init_normalises_first_batch():
    block = B.ActNorm()
    x = (np.random.default_rng(0).standard_normal((8, 4, 4, 3)) * [1, 5, 0.1] + [3, -2, 7]
         ).astype("float32")
    block.init_from_data = True
    y, _ = block(x)
    block.init_from_data = False
    y = to_np(y)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1, atol=1e-3)
    assert float(to_np(block.initialized)) == 1.0
    before = to_np(block.loc).copy()
    block.init_from_data = True
    block(x + 100)  # already initialised: unchanged
    np.testing.assert_array_equal(to_np(block.loc), before)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    block, x, c = built_block(name)
    clone = block.__class__.from_config(block.get_config())
    clone(x, c) if not isinstance(block, B.Split) else clone(x, c)
    clone.set_weights(block.get_weights())
    np.testing.assert_array_equal(to_np(forward(clone, x, c)[0]), to_np(forward(block, x, c)[0]))


def test_wrong_channel_count_names_expected_shape():
    block, x, c = built_block("coupling")
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4, 4, 4\)"):
        block(np.zeros((2, 4, 4, 5), "float32"), c)


def test_wrong_condition_size_names_expected_shape():
    block, x, c = built_block("coupling")
    with pytest.raises(ValueError, match=r"spatial size of x, expected shape \(batch, 4, 4, C\)"):
        block(x, np.zeros((2, 8, 8, COND_CH), "float32"))
    with pytest.raises(ValueError, match=r"3 channels"):
        block(x, np.zeros((2, 4, 4, 1), "float32"))


def test_injector_without_condition_fails_clearly():
    block, x, c = built_block("injector")
    with pytest.raises(ValueError, match="needs a condition"):
        block(x)


def test_odd_size_downsample_fails_clearly():
    with pytest.raises(ValueError, match="must be even"):
        B.HaarDownsample()(np.zeros((1, 5, 4, 2), "float32"))


def test_squeeze_layout():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    y = to_np(B.Squeeze()(x)[0])
    assert y.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(y[0, 0, 0], [0, 1, 4, 5])


def test_haar_low_pass_is_scaled_mean():
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2)).astype("float32")
    y = to_np(B.HaarDownsample()(x)[0])
    np.testing.assert_allclose(y[0, 0, 0, :2], 2 * x[0, :2, :2].mean(axis=(0, 1)), atol=1e-6)
