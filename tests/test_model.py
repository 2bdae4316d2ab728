"""ConditionalINN: invertibility, densities, training on a toy problem, saving,
shape errors, finite samples."""
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import example, randomize, to_np

from cinn import ConditionalINN
from cinn.conditioning import ConditionNet

LEVELS = [
    {"downsample": "haar", "blocks": 2, "subnet": {"hidden": 16}},
    {"downsample": "squeeze", "blocks": 2, "injector": True, "split": "prior",
     "subnet": {"hidden": 16}},
    {"downsample": "haar", "transition": True, "blocks": 2, "permute": "random",
     "split": "plain", "subnet": {"hidden": 16}},
]


def image_model(seed=0):
    return ConditionalINN((None, None, 2), (None, None, 1), LEVELS, seed=seed,
                          cond_net=ConditionNet([-1, -2, -3], channels=8, hidden=16,
                                                trunk_blocks=1))


def data(n=3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal((n, 32, 32, 2)) * scale).astype("float32"),
            rng.standard_normal((n, 32, 32, 1)).astype("float32"))


@pytest.fixture(scope="module")
def trained_like():
    model = image_model()
    randomize(model, 0.01, seed=1)  # non-trivial, like a model early in training
    return model


@pytest.mark.parametrize("scale", [0.0, 1e-3, 1.0, 10.0])
def test_three_level_model_is_invertible(trained_like, scale):
    x, c = data(scale=scale)
    z, log_det = trained_like.encode(x, c)
    assert to_np(z).shape == (3, 32 * 32 * 2) and to_np(log_det).shape == (3,)
    xr = to_np(trained_like.decode(z, c))
    np.testing.assert_allclose(xr, x, atol=1e-4, rtol=0)


def test_decode_and_log_det_is_decode_with_minus_encodes_log_det(trained_like):
    x, c = data()
    z, log_det = trained_like.encode(x, c)
    xr, log_det_inv = trained_like.decode_and_log_det(z, c)
    np.testing.assert_array_equal(to_np(xr), to_np(trained_like.decode(z, c)))
    np.testing.assert_allclose(to_np(log_det_inv), -to_np(log_det), rtol=1e-5, atol=1e-3)


def test_fresh_model_log_det_and_log_prob():
    model = image_model()
    x, c = data()
    z, log_det = model.encode(x, c)
    # fresh: ActNorm and couplings are identities, the rest volume-preserving
    np.testing.assert_allclose(to_np(log_det), 0, atol=1e-3)
    expected = -0.5 * (x.reshape(3, -1) ** 2).sum(1) - 0.5 * x[0].size * math.log(2 * math.pi)
    np.testing.assert_allclose(to_np(model.log_prob(x, c)), expected, rtol=1e-4)


def test_any_image_size_and_sampling_shape(trained_like):
    c = np.random.default_rng(1).standard_normal((2, 16, 24, 1)).astype("float32")
    s = to_np(trained_like.sample(c, n=3, temperature=0.7, seed=3))
    assert s.shape == (2, 3, 16, 24, 2)
    again = to_np(trained_like.sample(c, n=3, temperature=0.7, seed=3))
    np.testing.assert_array_equal(s, again)
    assert np.abs(s[:, 0] - s[:, 1]).mean() > 1e-3  # different samples per condition


def test_bits_per_dim_matches_nll(trained_like):
    x, c = data()
    z, ld = trained_like.encode(x, c)
    bpd = to_np(trained_like.bits_per_dim(z, ld))
    nll = -to_np(trained_like.log_prob(x, c))
    np.testing.assert_allclose(bpd, nll / (x[0].size * math.log(2)), rtol=1e-5)


def test_wrong_shapes_raise_value_errors_naming_expected_shape(trained_like):
    x, c = data()
    with pytest.raises(ValueError, match=r"x must have shape \(batch, None, None, 2\)"):
        trained_like.encode(x[..., :1], c)
    with pytest.raises(ValueError, match=r"condition must have shape \(batch, 32, 32, 1\)"):
        trained_like.encode(x, np.zeros((3, 32, 32, 3), "float32"))
    with pytest.raises(ValueError, match=r"condition must have shape \(batch, None, None, 1\)"):
        trained_like.sample(np.zeros((1, 8, 8, 2), "float32"))
    with pytest.raises(ValueError, match="multiples of 8"):
        trained_like.sample(np.zeros((1, 12, 8, 1), "float32"))
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 2048\)"):
        trained_like.decode(np.zeros((3, 100), "float32"), c)


def test_save_load_same_encode(tmp_path, trained_like):
    x, c = data()
    path = tmp_path / "m.keras"
    trained_like.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_np(loaded.encode(x, c)[0]), to_np(trained_like.encode(x, c)[0]),
                               atol=1e-6)
    np.testing.assert_allclose(to_np(loaded.sample(c, n=2, seed=5)),
                               to_np(trained_like.sample(c, n=2, seed=5)), atol=1e-6)


def _other_backend():
    return "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"


def test_weights_load_on_the_other_backend(tmp_path, trained_like):
    other = _other_backend()
    pytest.importorskip("jax" if other == "jax" else "tensorflow")
    x, c = data()
    trained_like.save(tmp_path / "m.keras")
    np.savez(tmp_path / "io.npz", x=x, c=c, z=to_np(trained_like.encode(x, c)[0]))
    script = (
        "import numpy as np, keras, cinn, cinn.conditioning\n"
        f"d = np.load(r'{tmp_path / 'io.npz'}')\n"
        f"m = keras.saving.load_model(r'{tmp_path / 'm.keras'}')\n"
        "z = keras.ops.convert_to_numpy(m.encode(d['x'], d['c'])[0])\n"
        "print('MAXDIFF', float(np.abs(z - d['z']).max()))\n")
    env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    diff = float(out.stdout.split("MAXDIFF")[1])
    assert diff < 1e-4


moons = example("rotated_moons").moons       # the example's data, in 2-D


@pytest.fixture(scope="module")
def moons_model():
    return example("rotated_moons").train(epochs=12)


def _principal_angle(pts):
    """Orientation (mod pi) of the main axis of a point cloud."""
    w, v = np.linalg.eigh(np.cov(pts.T))
    return math.atan2(v[1, -1], v[0, -1]) % math.pi


def test_toy_problem_learns_conditional_density(moons_model):
    x, c = moons(2000, np.random.default_rng(1))
    nll = -to_np(moons_model.log_prob(x, c)).mean()
    normal_nll = (0.5 * (x ** 2).sum(1) + math.log(2 * math.pi)).mean()
    assert nll < normal_nll - 0.8, (nll, normal_nll)
    # the sample cloud turns with the condition angle, as the data does
    for ang in (0.0, np.pi / 2):
        cond = np.array([[np.cos(ang), np.sin(ang)]], "float32")
        s = to_np(moons_model.sample(cond, n=2000, seed=4))[0]
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        ref = np.einsum("ij,nj->ni", rot, moons(4000, np.random.default_rng(6), angle=0)[0])
        diff = abs(_principal_angle(s) - _principal_angle(ref))
        assert min(diff, math.pi - diff) < math.radians(20), (ang, _principal_angle(s))
        np.testing.assert_allclose(np.trace(np.cov(s.T)), np.trace(np.cov(ref.T)), rtol=0.25)


def test_samples_are_finite_at_high_temperature(moons_model):
    rng = np.random.default_rng(7)
    for model in (ConditionalINN((2,), (2,), [{"blocks": 4, "subnet": {"type": "dense"}}],
                                 seed=1), moons_model):
        conds = np.concatenate([rng.standard_normal((97, 2)), np.zeros((1, 2)),
                                np.full((1, 2), 1e4), np.full((1, 2), -1e4)]).astype("float32")
        s = to_np(model.sample(conds, n=4, temperature=1.5, seed=1))
        assert s.shape == (100, 4, 2) and np.all(np.isfinite(s))


def test_image_samples_are_finite_for_extreme_conditions(trained_like):
    rng = np.random.default_rng(8)
    conds = np.concatenate([rng.standard_normal((6, 16, 16, 1)), np.zeros((1, 16, 16, 1)),
                            np.full((1, 16, 16, 1), 1e3)]).astype("float32")
    s = to_np(trained_like.sample(conds, n=2, temperature=1.5, seed=2))
    assert np.all(np.isfinite(s))


def first_coupling(model):
    from cinn.blocks import AffineCoupling

    return next(layer for level in model.flow_layers for layer in level
                if isinstance(layer, AffineCoupling))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_subnets_keep_the_flow_exact(tmp_path, policy):
    """Half-precision trunks and conditioning net: invertible to 1e-3 (a flipped
    half-precision rounding in a subnet moves (s, t) by one ulp; float32 gets ~1e-6
    on this model), log-det equal to the autodiff Jacobian's, and the .keras file
    keeps the policy."""
    from helpers import jacobian_logdet

    levels = [{**lv, "subnet": {**lv["subnet"], "dtype": policy}} for lv in LEVELS]
    model = ConditionalINN((None, None, 2), (None, None, 1), levels, seed=0,
                           cond_net=ConditionNet([-1, -2, -3], channels=8, hidden=16,
                                                 trunk_blocks=1, dtype=policy))
    x, c = data(n=2)
    model.initialize(x, c)
    randomize(model, 0.01, seed=1)  # as trained_like
    conv = first_coupling(model).params.trunk.convs[0]
    assert conv.compute_dtype == policy.split("_")[1] and conv.variable_dtype == "float32"
    z, log_det = model.encode(x, c)
    assert to_np(z).dtype == np.float32 and np.all(np.isfinite(to_np(z)))
    np.testing.assert_allclose(to_np(model.decode(z, c)), x, atol=1e-3, rtol=0)

    xs, cs = x[:1, :8, :8], c[:1, :8, :8]
    expected = jacobian_logdet(lambda v: model.encode(v, cs)[0], xs)
    np.testing.assert_allclose(to_np(model.encode(xs, cs)[1])[0], expected, atol=1e-3, rtol=1e-4)

    path = tmp_path / "mixed.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    conv = first_coupling(loaded).params.trunk.convs[0]
    assert conv.compute_dtype == policy.split("_")[1]
    np.testing.assert_array_equal(to_np(loaded.encode(x, c)[0]), to_np(z))
