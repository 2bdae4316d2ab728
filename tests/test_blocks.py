"""The block contract, one table for every block (no special cases):
``y, log_det = block.forward_and_log_det(x, c)``, ``x, log_det = block.inverse_and_log_det(y, c)``,
``block(x, c, inverse=...)`` the same; both directions invert each other, both log-dets
match the autodiff Jacobian, ``get_config`` round-trips, shapes are checked both ways.
Then the properties of single blocks."""
import keras
import numpy as np
import pytest
from helpers import gradients, jacobian, jacobian_logdet, randomize, to_np

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
    # NICE
    "additive": (lambda: B.AdditiveCoupling({"hidden": 8}), (4, 4, 4), COND_CH),
    "additive_uncond": (lambda: B.AdditiveCoupling({"type": "dense", "hidden": 8}, parity=1),
                        (5,), None),
    "additive_checkerboard": (lambda: B.AdditiveCoupling({"hidden": 8}, mask="checkerboard"),
                              (4, 4, 2), COND_CH),
    "diag_scaling": (lambda: B.DiagonalScaling(), (4, 4, 2), None),
    "diag_scaling_vector": (lambda: B.DiagonalScaling(), (3,), None),
    # RealNVP's masks
    "coupling_swapped": (lambda: B.MaskedAffineCoupling({"hidden": 8}, parity=1), (4, 4, 3),
                         COND_CH),
    "coupling_checkerboard": (lambda: B.MaskedAffineCoupling({"hidden": 8},
                                                             mask="checkerboard"),
                              (4, 4, 3), COND_CH),
    "coupling_checkerboard_odd": (lambda: B.MaskedAffineCoupling(
        {"hidden": 8}, mask="checkerboard", parity=1), (5, 3, 1), None),
    "coupling_alternating_dense": (lambda: B.MaskedAffineCoupling(
        {"type": "dense", "hidden": 8}, mask="checkerboard"), (5,), COND_CH),
    # neural spline flows
    "spline": (lambda: B.RationalQuadraticCoupling({"hidden": 8}), (4, 4, 4), COND_CH),
    "spline_uncond": (lambda: B.RationalQuadraticCoupling(
        {"hidden": 8}, bins=4, mask="checkerboard", parity=1), (4, 4, 2), None),
    "spline_dense": (lambda: B.RationalQuadraticCoupling(
        {"type": "dense", "hidden": 8}, bins=5, parity=1), (5,), COND_CH),
    # autoregressive flows
    "maf": (lambda: B.MaskedAutoregressiveFlow(hidden=16), (5,), COND_CH),
    "maf_uncond": (lambda: B.MaskedAutoregressiveFlow(hidden=16, reverse=True), (4,), None),
    "maf_spline": (lambda: B.MaskedAutoregressiveFlow(hidden=16, transform="spline", bins=4),
                   (4,), COND_CH),
    "iaf": (lambda: B.MaskedAutoregressiveFlow(hidden=16, inverse_autoregressive=True),
            (5,), COND_CH),
}
NAMES = list(BLOCKS)
#: blocks with zero-initialised parameters: a new one is the identity, exactly (0) or
#: up to rounding (the splines' knots and slopes are computed)
IDENTITY_AT_INIT = {
    "coupling": 0, "coupling_dense": 0, "injector": 0, "split_prior": 0,
    "additive": 0, "additive_uncond": 0, "additive_checkerboard": 0, "diag_scaling": 0,
    "coupling_swapped": 0, "coupling_checkerboard": 0, "coupling_checkerboard_odd": 0,
    "coupling_alternating_dense": 0, "spline": 1e-5, "spline_uncond": 1e-5,
    "spline_dense": 1e-5, "maf": 0, "maf_uncond": 0, "maf_spline": 1e-5, "iaf": 0,
}
SPLINES = ["spline", "spline_uncond", "spline_dense", "maf_spline"]
#: weight noise of ``built_block`` (default 0.3). A spline's bin sizes are a softmax
#: of the subnet's outputs, and these grow with the input (x * 10 below): noise of
#: 0.3 gives bins e^10 apart, slopes of 1e-6, maps that no float32 inverse resolves
#: to 1e-4 (y's rounding, divided by the slope). Smaller noise keeps them tame.
NOISE = {"spline": 0.04, "spline_uncond": 0.04, "spline_dense": 0.1, "maf_spline": 0.1}
AUTOREGRESSIVE = ["maf", "maf_uncond", "maf_spline", "iaf"]


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
    randomize(block, NOISE.get(name, 0.3), seed)
    return block, x, c


_SHARED = {}


def shared_block(name):
    """``built_block(name)``, built once for the contract tests, which only call it
    (building a block per test and backend costs more than the checks)."""
    if name not in _SHARED:
        _SHARED[name] = built_block(name)
    return _SHARED[name]


# -- the contract -----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_directions_invert_each_other(name):
    block, x0, c = shared_block(name)
    for scale in [0.0, 1e-3, 1.0, 10.0]:  # inputs at 0, tiny, typical and far out
        x, at = x0 * scale, f"input scale {scale}"
        y, ld = block.forward_and_log_det(x, c)
        assert tuple(y.shape) == block.forward_shape(x.shape), at
        assert to_np(ld).shape == (x.shape[0],), at
        xr, ld_inv = block.inverse_and_log_det(y, c)
        np.testing.assert_allclose(to_np(xr), x, atol=1e-4, rtol=0, err_msg=at)
        np.testing.assert_allclose(to_np(ld_inv), -to_np(ld), atol=1e-4, rtol=1e-5,
                                   err_msg=at)
        # the inverse first, then the forward
        yr, ld_fwd = block.forward_and_log_det(*block.inverse_and_log_det(y, c)[:1], c)
        np.testing.assert_allclose(to_np(yr), to_np(y), atol=1e-4, rtol=0, err_msg=at)
        np.testing.assert_allclose(to_np(ld_fwd), to_np(ld), atol=1e-4, rtol=1e-5,
                                   err_msg=at)


@pytest.mark.parametrize("name", NAMES)
def test_call_dispatches_to_the_pair(name):
    block, x, c = shared_block(name)
    y, ld = block(x, c)
    y2, ld2 = block.forward_and_log_det(x, c)
    np.testing.assert_array_equal(to_np(y), to_np(y2))
    np.testing.assert_array_equal(to_np(ld), to_np(ld2))
    xr, ldi = block(y, c, inverse=True)
    xr2, ldi2 = block.inverse_and_log_det(y, c)
    np.testing.assert_array_equal(to_np(xr), to_np(xr2))
    np.testing.assert_array_equal(to_np(ldi), to_np(ldi2))


def _per_sample_logdets(fn, x):
    """``log|det J_i|`` of each sample i of the batch ``x`` under ``fn``, from the
    autodiff Jacobian of the whole batch, whose blocks between different samples
    must be zero (no sample depends on another)."""
    jac = jacobian(fn, x)
    n, d = x.shape[0], x[0].size
    assert jac.shape == (n * d, n * d), jac.shape
    out = []
    for i in range(n):
        for j in range(n):
            part = jac[i * d:(i + 1) * d, j * d:(j + 1) * d]
            if i == j:
                out.append(np.linalg.slogdet(part)[1])
            else:
                np.testing.assert_array_equal(part, 0, err_msg=f"sample {i} on sample {j}")
    return np.array(out)


@pytest.mark.parametrize("name", NAMES)
def test_log_dets_match_autodiff_jacobians(name):
    block, x, c = shared_block(name)  # a batch of 2, each sample's log-det checked
    y, ld = block.forward_and_log_det(x, c)
    expected = _per_sample_logdets(lambda v: block.forward_and_log_det(v, c)[0], x)
    np.testing.assert_allclose(to_np(ld), expected, atol=1e-3, rtol=0)
    y = to_np(y)
    _, ld_inv = block.inverse_and_log_det(y, c)
    expected = _per_sample_logdets(lambda v: block.inverse_and_log_det(v, c)[0], y)
    np.testing.assert_allclose(to_np(ld_inv), expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    block, x, c = shared_block(name)
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
    block, x, c = shared_block(name)
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
    block, x, c = shared_block(name)
    y = to_np(block.forward_and_log_det(x, c)[0])
    wrong_x = np.zeros(x.shape[:-1] + (x.shape[-1] + 4,), "float32")
    wrong_y = np.zeros(y.shape[:-1] + (y.shape[-1] + 4,), "float32")
    expected = r"\(batch, " + ", ".join(str(d) for d in x.shape[1:]) + r"\)"
    with pytest.raises(ValueError, match=r"expected input of shape " + expected):
        block.forward_and_log_det(wrong_x, c)
    expected = r"\(batch, " + ", ".join(str(d) for d in y.shape[1:]) + r"\)"
    with pytest.raises(ValueError, match=r"expected inverse input of shape " + expected):
        block.inverse_and_log_det(wrong_y, c)


@pytest.mark.parametrize("name", IDENTITY_AT_INIT)
def test_fresh_block_is_identity(name):
    tol = IDENTITY_AT_INIT[name]
    block = BLOCKS[name][0]()
    x, c = inputs(name, seed=3)
    y, ld = block.forward_and_log_det(x, c)
    np.testing.assert_allclose(to_np(y), x, atol=tol, rtol=0)
    np.testing.assert_allclose(to_np(ld), np.zeros(2, "float32"), atol=tol * x[0].size, rtol=0)
    xr, ld = block.inverse_and_log_det(x, c)
    np.testing.assert_allclose(to_np(xr), x, atol=tol, rtol=0)
    np.testing.assert_allclose(to_np(ld), np.zeros(2, "float32"), atol=tol * x[0].size, rtol=0)


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


# -- NICE, RealNVP masks --------------------------------------------------------------------
def test_diagonal_scaling_log_det_is_positions_times_sum_of_log_scales():
    block, x, _ = built_block("diag_scaling")
    s = to_np(block.log_scale)
    y, ld = block.forward_and_log_det(x)
    np.testing.assert_allclose(to_np(y), x * np.exp(s), rtol=1e-6)
    np.testing.assert_allclose(to_np(ld), np.full(2, 16 * s.sum()), rtol=1e-5)


def test_additive_coupling_preserves_volume():
    for name in ["additive", "additive_uncond", "additive_checkerboard"]:
        block, x, c = built_block(name)
        y, ld = block.forward_and_log_det(x, c)
        assert np.all(to_np(ld) == 0) and not np.allclose(to_np(y), x)


def test_channel_mask_is_the_affine_coupling_and_parity_swaps_the_halves():
    block, x, c = built_block("coupling")
    masked = B.MaskedAffineCoupling({"hidden": 8})
    masked.forward_and_log_det(x, c)
    masked.set_weights(block.get_weights())  # same subnet, (s, t) in the same layout
    for ours, theirs in zip(block.forward_and_log_det(x, c), masked.forward_and_log_det(x, c)):
        np.testing.assert_allclose(to_np(ours), to_np(theirs), atol=1e-6)
    swapped, x, c = built_block("coupling_swapped")  # 3 channels: the first 2 transformed
    y = to_np(swapped.forward_and_log_det(x, c)[0])
    np.testing.assert_array_equal(y[..., 2:], x[..., 2:])
    assert not np.allclose(y[..., :2], x[..., :2])


@pytest.mark.parametrize("name", ["coupling_checkerboard", "coupling_checkerboard_odd",
                                  "coupling_alternating_dense", "additive_checkerboard",
                                  "spline_uncond"])
def test_checkerboard_keeps_its_positions_and_alternates(name):
    block, x, c = built_block(name)
    m = to_np(B.checkerboard_mask(x, block.parity))
    other = to_np(B.checkerboard_mask(x, 1 - block.parity))
    np.testing.assert_array_equal(m + other, np.ones_like(m))  # the parities complement
    if x.ndim == 4:  # a spatial checkerboard, the same for all channels of a position
        assert m.shape == (1,) + x.shape[1:3] + (1,)
        assert m[0, 0, 0, 0] == 1 - block.parity and m[0, 0, 1, 0] == block.parity
        assert m[0, 1, 1, 0] == 1 - block.parity
    else:  # vectors: alternating features
        np.testing.assert_array_equal(m[0], (np.arange(x.shape[-1]) + block.parity + 1) % 2)
    y = to_np(block.forward_and_log_det(x, c)[0])
    keep = np.broadcast_to(m, x.shape) == 1
    np.testing.assert_array_equal(y[keep], x[keep])
    assert np.all(np.abs(y[~keep] - x[~keep]) > 0)


def test_masks_and_parities_are_checked():
    with pytest.raises(ValueError, match="mask must be one of"):
        B.MaskedAffineCoupling(mask="stripes")
    with pytest.raises(ValueError, match="parity must be 0 or 1"):
        B.AdditiveCoupling(parity=2)
    with pytest.raises(ValueError, match="at least 2 features"):
        B.AdditiveCoupling(mask="checkerboard").forward_and_log_det(np.zeros((1, 1), "float32"))


# -- splines --------------------------------------------------------------------------------
def _spline_loss(inverse, bins, bound):
    from keras import ops

    def loss(v, raw):
        out, ld = B.rational_quadratic_spline(v, raw, inverse, bins, bound)
        return ops.sum(out) + ops.sum(ld)

    return loss


def test_spline_is_safe_on_knots_at_the_bounds_and_beyond():
    """On every knot (+-bound included), just beyond the bounds and far out (+-1e3):
    finite, invertible, log-dets that cancel, finite gradients, both directions."""
    from cinn.blocks.spline import spline_params

    bins, bound, n = 6, 3.0, 5
    raw = np.random.default_rng(0).standard_normal((n, 3 * bins - 1)).astype("float32")
    xk, yk, d = (to_np(v) for v in spline_params(raw, bins, bound))
    assert np.all(np.diff(xk) > 0) and np.all(np.diff(yk) > 0) and np.all(d > 0)
    assert np.all(xk[:, [0, -1]] == [-bound, bound]) and np.all(d[:, [0, -1]] == 1)
    beyond = np.array([-1e3, -bound - 1e-3, bound + 1e-3, 1e3], "float32")
    for inverse, knots, other in [(False, xk, yk), (True, yk, xk)]:
        v = np.concatenate([knots, np.broadcast_to(beyond, (n, 4))], axis=1)
        r = np.ascontiguousarray(np.broadcast_to(raw[:, None], v.shape + raw.shape[-1:]))
        out, ld = (to_np(t) for t in B.rational_quadratic_spline(v, r, inverse, bins, bound))
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(ld))
        np.testing.assert_allclose(out[:, :bins + 1], other, atol=1e-5)  # knots onto knots
        np.testing.assert_array_equal(out[:, bins + 1:], v[:, bins + 1:])  # identity tails
        np.testing.assert_array_equal(ld[:, bins + 1:], 0)
        back, ld_back = (to_np(t) for t in
                         B.rational_quadratic_spline(out, r, not inverse, bins, bound))
        np.testing.assert_allclose(back, v, atol=1e-4, rtol=0)
        np.testing.assert_allclose(ld_back, -ld, atol=1e-4)
        for g in gradients(_spline_loss(inverse, bins, bound), v, r):
            assert np.all(np.isfinite(g))


def test_fresh_spline_is_the_identity_with_unit_derivatives():
    from cinn.blocks.spline import spline_params

    xk, yk, d = (to_np(v) for v in spline_params(np.zeros((1, 23), "float32"), 8, 3.0))
    np.testing.assert_allclose(xk[0], np.linspace(-3, 3, 9), atol=1e-6)
    np.testing.assert_array_equal(xk, yk)
    np.testing.assert_allclose(d, 1.0, atol=1e-6)


def _with_transformed(block, x, values):
    """``x`` with its transformed part (``block.subnet_output``) replaced by ``values``."""
    if block.mask == "channel":
        return to_np(block.join_halves(block.halves(x)[0], values))
    keep = np.broadcast_to(to_np(B.checkerboard_mask(x, block.parity)), x.shape) == 1
    return np.where(keep, x, values).astype("float32")


@pytest.mark.parametrize("name", ["spline", "spline_uncond", "spline_dense"])
def test_spline_coupling_is_safe_on_its_knots_at_the_bounds_and_beyond(name):
    """The randomised block's own knots, +-bound, and +-1e3 for every transformed element:
    the subnet sees only the kept part, so the knots stay where they were."""
    from keras import ops

    block, x, c = built_block(name)
    xk, yk, _ = (to_np(v) for v in block.knots(x, c))
    which = np.arange(xk[..., 0].size).reshape(xk.shape[:-1]) % (block.bins + 1)
    on_knots = np.take_along_axis(xk, which[..., None], -1)[..., 0]
    y_knots = np.take_along_axis(yk, which[..., None], -1)[..., 0]
    edges = np.where(which % 2 == 0, -block.bound, block.bound).astype("float32")
    far = np.where(which % 2 == 0, -1e3, 1e3).astype("float32")
    for values, image in [(on_knots, y_knots), (edges, edges), (far, far)]:
        v = _with_transformed(block, x, values)
        y, ld = block.forward_and_log_det(v, c)
        assert np.all(np.isfinite(to_np(y))) and np.all(np.isfinite(to_np(ld)))
        np.testing.assert_allclose(to_np(y), _with_transformed(block, v, image), atol=1e-5)
        xr, ld_inv = block.inverse_and_log_det(y, c)
        np.testing.assert_allclose(to_np(xr), v, atol=1e-4, rtol=0)
        np.testing.assert_allclose(to_np(ld_inv), -to_np(ld), atol=1e-4)
        if values is far:
            np.testing.assert_array_equal(to_np(y), v)
            np.testing.assert_array_equal(to_np(ld), 0)
        # the y on the y-knots, the other way round
        xr, _ = block.inverse_and_log_det(_with_transformed(block, to_np(y), image), c)
        assert np.all(np.isfinite(to_np(xr)))
        args = (v,) if c is None else (v, c)
        for inverse in (False, True):
            def loss(v, c=None, inverse=inverse):
                out, ld = block(v, c, inverse=inverse)
                return ops.sum(out) + ops.sum(ld)

            for g in gradients(loss, *args):
                assert np.all(np.isfinite(g))


# -- autoregressive flows -------------------------------------------------------------------
@pytest.mark.parametrize("name", AUTOREGRESSIVE)
def test_autoregressive_jacobians_are_triangular_in_their_order(name):
    """Output i depends on the inputs up to i in the block's order, not on later ones;
    the MADE's parameters of dimension i on inputs strictly before i."""
    block, x, c = built_block(name, batch=1)
    degrees = block.made.degrees_in
    order = np.argsort(degrees)  # the dimensions in the autoregressive order
    y = to_np(block.forward_and_log_det(x, c)[0])
    for fn, at in [(lambda v: block.forward_and_log_det(v, c)[0], x),
                   (lambda v: block.inverse_and_log_det(v, c)[0], y)]:
        jac = jacobian(fn, at)[np.ix_(order, order)]
        assert np.all(np.triu(jac, 1) == 0), jac
        assert np.any(jac[np.tril_indices(len(order), -1)] != 0), jac  # not elementwise
    jac = jacobian(lambda v: block.made(v, c), x)  # (D * params, D), element-major
    jac = jac.reshape(len(degrees), -1, len(degrees))
    later = degrees[None, :] >= degrees[:, None]  # [i, j]: input j not before output i
    assert np.all(jac.transpose(0, 2, 1)[later] == 0)
    assert np.any(jac.transpose(0, 2, 1)[~later] != 0)
    if c is not None:  # the condition reaches every dimension, the first one too
        y2 = to_np(block.forward_and_log_det(x, c + 1.0)[0])
        assert np.all(y2 != y)


def test_maf_density_and_iaf_inverse_are_one_pass_the_other_directions_d_passes():
    passes = {}
    for name in ["maf", "iaf"]:
        block, x, c = built_block(name)
        calls, made_call = [], block.made.call
        block.made.call = lambda *args, **kwargs: calls.append(1) or made_call(*args, **kwargs)
        block.forward_and_log_det(x, c)
        forward = len(calls)
        block.inverse_and_log_det(x, c)
        passes[name] = (forward, len(calls) - forward)
    assert passes == {"maf": (1, 5), "iaf": (5, 1)}  # x has 5 dimensions


def test_autoregressive_flow_checks_its_input():
    with pytest.raises(ValueError, match=r"vectors of known size, shape \(batch, D\)"):
        B.MaskedAutoregressiveFlow().forward_and_log_det(np.zeros((1, 4, 4, 2), "float32"))
    with pytest.raises(ValueError, match="transform must be one of"):
        B.MaskedAutoregressiveFlow(transform="neural")


# -- .keras files -----------------------------------------------------------------------------
#: the new blocks stacked, vectors and images, with a condition
STACKS = {
    "vector": ((5,), [lambda: B.AdditiveCoupling({"type": "dense", "hidden": 8}),
                      lambda: B.DiagonalScaling(),
                      lambda: B.MaskedAffineCoupling({"type": "dense", "hidden": 8},
                                                     mask="checkerboard", parity=1),
                      lambda: B.RationalQuadraticCoupling({"type": "dense", "hidden": 8},
                                                          bins=4),
                      lambda: B.MaskedAutoregressiveFlow(hidden=8, reverse=True),
                      lambda: B.MaskedAutoregressiveFlow(hidden=8, transform="spline"),
                      lambda: B.MaskedAutoregressiveFlow(hidden=8, inverse_autoregressive=True)]),
    "image": ((4, 4, 4), [lambda: B.AdditiveCoupling({"hidden": 8}, mask="checkerboard"),
                          lambda: B.MaskedAffineCoupling({"hidden": 8}, mask="checkerboard",
                                                         parity=1),
                          lambda: B.MaskedAffineCoupling({"hidden": 8}, parity=1),
                          lambda: B.RationalQuadraticCoupling({"hidden": 8}, bins=4),
                          lambda: B.DiagonalScaling()]),
}


@keras.saving.register_keras_serializable(package="cinn_tests")
class BlockStack(keras.Model):
    """The blocks in order, built on zeros of the given shapes."""

    def __init__(self, blocks, x_shape, c_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [b if isinstance(b, keras.layers.Layer)
                       else keras.saving.deserialize_keras_object(b) for b in blocks]
        self.x_shape, self.c_shape = tuple(x_shape), c_shape and tuple(c_shape)

    def call(self, x, c=None, inverse=False):
        total = 0.0
        for block in (reversed(self.blocks) if inverse else self.blocks):
            x, log_det = block(x, c, inverse=inverse)
            total = total + log_det
        return x, total

    def build_from_config(self, config):
        zeros = np.zeros((1,) + self.x_shape, "float32")
        self(zeros, None if self.c_shape is None else np.zeros((1,) + self.c_shape, "float32"))

    def get_build_config(self):
        return {"shapes": "in the config"}  # non-empty: load_model builds

    def get_config(self):
        return {**super().get_config(), "x_shape": self.x_shape, "c_shape": self.c_shape,
                "blocks": [keras.saving.serialize_keras_object(b) for b in self.blocks]}


@pytest.mark.parametrize("kind", STACKS)
def test_new_blocks_survive_a_keras_file(kind, tmp_path):
    shape, makers = STACKS[kind]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2,) + shape).astype("float32")
    c = rng.standard_normal((2,) + shape[:-1] + (COND_CH,)).astype("float32")
    stack = BlockStack([make() for make in makers], shape, shape[:-1] + (COND_CH,))
    stack.build_from_config({})
    randomize(stack, 0.05, 1)
    stack.save(tmp_path / "stack.keras")
    loaded = keras.saving.load_model(tmp_path / "stack.keras")
    assert [type(b) for b in loaded.blocks] == [type(b) for b in stack.blocks]
    y, ld = stack(x, c)
    for ours, theirs in [((y, ld), loaded(x, c)), (stack(y, c, inverse=True),
                                                   loaded(y, c, inverse=True))]:
        for u, v in zip(ours, theirs):
            np.testing.assert_array_equal(to_np(u), to_np(v))
    np.testing.assert_allclose(to_np(loaded(y, c, inverse=True)[0]), x, atol=1e-4)
