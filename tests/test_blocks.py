"""The block contract, one table for every block (no special cases):
``y, log_det = block.forward_and_log_det(x, c)``, ``x, log_det = block.inverse_and_log_det(y, c)``,
``block(x, c, inverse=...)`` the same; both directions invert each other, both log-dets
match the autodiff Jacobian, ``get_config`` round-trips, shapes are checked both ways.
Then the properties of single blocks."""
import numpy as np
import pytest
from helpers import jacobian_logdet, randomize, to_np

from cinn import blocks as B

COND_CH = 3

#: name -> (block factory, shape of one x, condition channels or None)
BLOCKS = {
    "coupling": (lambda: B.AffineCoupling({"hidden": 8}), (4, 4, 4), COND_CH),
    "coupling_dense": (lambda: B.AffineCoupling({"type": "dense", "hidden": 8}), (5,), COND_CH),
    "coupling_uncond": (lambda: B.AffineCoupling({"hidden": 8}), (4, 4, 3), None),
    "injector": (lambda: B.AffineInjector({"hidden": 8}), (4, 4, 2), COND_CH),
    "actnorm": (lambda: B.ActNorm(), (4, 4, 2), None),
    "actnorm_vector": (lambda: B.ActNorm(), (3,), None),
    "conv1x1": (lambda: B.InvertibleConv1x1(seed=1), (4, 4, 3), None),
    "permutation": (lambda: B.RandomPermutation(seed=1), (4, 4, 3), None),
    "squeeze": (lambda: B.Squeeze(), (4, 4, 2), None),
    "haar": (lambda: B.HaarDownsample(), (4, 4, 2), None),
    "split_plain": (lambda: B.Split(), (4, 4, 4), COND_CH),
    "split_prior": (lambda: B.Split(prior=True, subnet={"hidden": 8}), (4, 4, 5), COND_CH),
}
NAMES = list(BLOCKS)
#: blocks with a subnet: zero-initialised, a new one is the identity
AFFINE = ["coupling", "coupling_dense", "injector", "split_prior"]


def inputs(name, batch=2, seed=0):
    _, shape, cond = BLOCKS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + shape).astype("float32")
    c = None if cond is None else rng.standard_normal(
        (batch,) + shape[:-1] + (cond,)).astype("float32")
    return x, c


def built_block(name, batch=2, seed=0):
    """A block called once on (x, c), its weights perturbed so it is not the identity."""
    block = BLOCKS[name][0]()
    x, c = inputs(name, batch, seed)
    block.forward_and_log_det(x, c)
    randomize(block, 0.3, seed)
    return block, x, c


# -- the contract -----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [0.0, 1e-3, 1.0, 10.0])
def test_directions_invert_each_other(name, scale):
    block, x, c = built_block(name)
    x = x * scale
    y, ld = block.forward_and_log_det(x, c)
    assert tuple(y.shape) == block.forward_shape(x.shape)
    assert to_np(ld).shape == (x.shape[0],)
    xr, ld_inv = block.inverse_and_log_det(y, c)
    np.testing.assert_allclose(to_np(xr), x, atol=1e-4, rtol=0)
    np.testing.assert_allclose(to_np(ld_inv), -to_np(ld), atol=1e-4, rtol=1e-5)
    # the inverse first, then the forward
    yr, ld_fwd = block.forward_and_log_det(*block.inverse_and_log_det(y, c)[:1], c)
    np.testing.assert_allclose(to_np(yr), to_np(y), atol=1e-4, rtol=0)
    np.testing.assert_allclose(to_np(ld_fwd), to_np(ld), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_call_dispatches_to_the_pair(name):
    block, x, c = built_block(name)
    y, ld = block(x, c)
    y2, ld2 = block.forward_and_log_det(x, c)
    np.testing.assert_array_equal(to_np(y), to_np(y2))
    np.testing.assert_array_equal(to_np(ld), to_np(ld2))
    xr, ldi = block(y, c, inverse=True)
    xr2, ldi2 = block.inverse_and_log_det(y, c)
    np.testing.assert_array_equal(to_np(xr), to_np(xr2))
    np.testing.assert_array_equal(to_np(ldi), to_np(ldi2))


@pytest.mark.parametrize("name", NAMES)
def test_log_dets_match_autodiff_jacobians(name):
    block, x, c = built_block(name, batch=1)
    y, ld = block.forward_and_log_det(x, c)
    expected = jacobian_logdet(lambda v: block.forward_and_log_det(v, c)[0], x)
    assert abs(float(to_np(ld)[0]) - expected) < 1e-3, (float(to_np(ld)[0]), expected)
    y = to_np(y)
    _, ld_inv = block.inverse_and_log_det(y, c)
    expected = jacobian_logdet(lambda v: block.inverse_and_log_det(v, c)[0], y)
    assert abs(float(to_np(ld_inv)[0]) - expected) < 1e-3, (float(to_np(ld_inv)[0]), expected)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    block, x, c = built_block(name)
    clone = block.__class__.from_config(block.get_config())
    clone.forward_and_log_det(x, c)
    clone.set_weights(block.get_weights())
    y, ld = block.forward_and_log_det(x, c)
    for ours, theirs in [((y, ld), clone.forward_and_log_det(x, c)),
                         (block.inverse_and_log_det(y, c), clone.inverse_and_log_det(y, c))]:
        for u, v in zip(ours, theirs):
            np.testing.assert_array_equal(to_np(u), to_np(v))


@pytest.mark.parametrize("name", NAMES)
def test_built_by_the_inverse_checks_the_forward(name):
    """A block first called in the inverse direction knows the shape of its x."""
    block, x, c = built_block(name)
    y = to_np(block.forward_and_log_det(x, c)[0])
    fresh = BLOCKS[name][0]()
    xr, _ = fresh.inverse_and_log_det(y, c)
    assert tuple(xr.shape) == x.shape
    fresh.forward_and_log_det(x, c)  # accepted
    wrong = np.zeros(x.shape[:-1] + (x.shape[-1] + 4,), "float32")
    with pytest.raises(ValueError, match="expected input of shape"):
        fresh.forward_and_log_det(wrong, c)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_channel_counts_fail_clearly_in_both_directions(name):
    block, x, c = built_block(name)
    y = to_np(block.forward_and_log_det(x, c)[0])
    wrong_x = np.zeros(x.shape[:-1] + (x.shape[-1] + 4,), "float32")
    wrong_y = np.zeros(y.shape[:-1] + (y.shape[-1] + 4,), "float32")
    expected = r"\(batch, " + ", ".join(str(d) for d in x.shape[1:]) + r"\)"
    with pytest.raises(ValueError, match=r"expected input of shape " + expected):
        block.forward_and_log_det(wrong_x, c)
    expected = r"\(batch, " + ", ".join(str(d) for d in y.shape[1:]) + r"\)"
    with pytest.raises(ValueError, match=r"expected inverse input of shape " + expected):
        block.inverse_and_log_det(wrong_y, c)


@pytest.mark.parametrize("name", AFFINE)
def test_fresh_affine_block_is_identity(name):
    block = BLOCKS[name][0]()
    x, c = inputs(name, seed=3)
    y, ld = block.forward_and_log_det(x, c)
    np.testing.assert_array_equal(to_np(y), x)
    np.testing.assert_array_equal(to_np(ld), np.zeros(2, "float32"))


# -- single blocks ----------------------------------------------------------------------
def test_split_separates_the_kept_half_from_the_latent():
    block, x, c = built_block("split_prior")
    assert block.factors_out and not B.AffineCoupling.factors_out
    y, _ = block.forward_and_log_det(x, c)
    kept, z = block.separate(y)
    assert block.keep == 3 and kept.shape[-1] == 3 and z.shape[-1] == 2
    np.testing.assert_array_equal(to_np(kept), x[..., :3])  # the kept half flows on unchanged
    np.testing.assert_array_equal(to_np(block.join(kept, z)), to_np(y))
    plain, x, c = built_block("split_plain")
    np.testing.assert_array_equal(to_np(plain.forward_and_log_det(x, c)[0]), x)


def test_split_channels_is_the_two_slices_and_passes_gradients_back():
    import keras
    from keras import ops

    from cinn.blocks.base import split_channels
    x = np.arange(2 * 3 * 5, dtype="float32").reshape(2, 3, 5)
    first, rest = split_channels(ops.convert_to_tensor(x), 2)
    np.testing.assert_array_equal(to_np(first), x[..., :2])
    np.testing.assert_array_equal(to_np(rest), x[..., 2:])
    def loss(v):
        return ops.sum(split_channels(v, 2)[1] * 3.0)

    if keras.backend.backend() == "jax":
        import jax
        g = jax.grad(loss)(ops.convert_to_tensor(x))
    else:
        import tensorflow as tf
        v = tf.Variable(x)
        with tf.GradientTape() as tape:
            out = loss(v)
        g = tape.gradient(out, v)
    expected = np.concatenate([np.zeros_like(x[..., :2]), np.full_like(x[..., 2:], 3.0)], -1)
    np.testing.assert_array_equal(to_np(g), expected)


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
    y, ld = block.forward_and_log_det(x * 100, c)
    xr, _ = block.inverse_and_log_det(y, c)
    assert np.all(np.isfinite(to_np(y))) and np.all(np.isfinite(to_np(xr)))
    assert np.all(np.abs(to_np(ld)) <= 2.0 * x[0].size / 2 + 1e-3)


def test_actnorm_data_init_normalises_first_batch():
    block = B.ActNorm()
    x = (np.random.default_rng(0).standard_normal((8, 4, 4, 3)) * [1, 5, 0.1] + [3, -2, 7]
         ).astype("float32")
    block.init_from_data = True
    y, _ = block.forward_and_log_det(x)
    block.init_from_data = False
    y = to_np(y)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1, atol=1e-3)
    assert float(to_np(block.initialized)) == 1.0
    before = to_np(block.loc).copy()
    block.init_from_data = True
    block.forward_and_log_det(x + 100)  # already initialised: unchanged
    np.testing.assert_array_equal(to_np(block.loc), before)


def test_wrong_condition_size_names_expected_shape():
    block, x, c = built_block("coupling")
    with pytest.raises(ValueError, match=r"spatial size of x, expected shape \(batch, 4, 4, C\)"):
        block.forward_and_log_det(x, np.zeros((2, 8, 8, COND_CH), "float32"))
    with pytest.raises(ValueError, match=r"3 channels"):
        block.forward_and_log_det(x, np.zeros((2, 4, 4, 1), "float32"))


def test_injector_without_condition_fails_clearly():
    block, x, c = built_block("injector")
    with pytest.raises(ValueError, match="needs a condition"):
        block.forward_and_log_det(x)


def test_downsampling_checks_its_input_in_both_directions():
    with pytest.raises(ValueError, match="must be even"):
        B.HaarDownsample().forward_and_log_det(np.zeros((1, 5, 4, 2), "float32"))
    with pytest.raises(ValueError, match="expected an image batch"):
        B.Squeeze().forward_and_log_det(np.zeros((1, 4, 2), "float32"))
    with pytest.raises(ValueError, match="multiple of 4 channels"):
        B.Squeeze().inverse_and_log_det(np.zeros((1, 2, 2, 6), "float32"))


def test_squeeze_layout():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    y = to_np(B.Squeeze().forward_and_log_det(x)[0])
    assert y.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(y[0, 0, 0], [0, 1, 4, 5])


def test_haar_low_pass_is_scaled_mean():
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2)).astype("float32")
    y = to_np(B.HaarDownsample().forward_and_log_det(x)[0])
    np.testing.assert_allclose(y[0, 0, 0, :2], 2 * x[0, :2, :2].mean(axis=(0, 1)), atol=1e-6)
