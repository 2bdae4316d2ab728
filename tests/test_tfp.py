"""``cinn.tfp.as_distribution``: a ConditionalINN as a TFP TransformedDistribution."""
import keras
import numpy as np
import pytest
from helpers import randomize, to_np

pytest.importorskip("tensorflow_probability")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="cinn.tfp needs the TensorFlow backend")


def tiny_model():
    from cinn import ConditionalINN
    from cinn.conditioning import ConditionNet

    sub = {"hidden": 8, "depth": 1}
    levels = [{"downsample": "haar", "blocks": 1, "split": "prior", "subnet": sub},
              {"downsample": "squeeze", "blocks": 1, "injector": True, "subnet": sub}]
    model = ConditionalINN((None, None, 2), (None, None, 1), levels, seed=0,
                           cond_net=ConditionNet([-1, -2], channels=4, hidden=8,
                                                 trunk_blocks=1))
    randomize(model, 0.05, seed=1)
    return model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def data(b=3, h=8, w=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((b, h, w, 2)).astype("float32"),
            rng.standard_normal((b, h, w, 1)).astype("float32"))


def test_shapes(model):
    from cinn.tfp import as_distribution

    x, c = data()
    dist = as_distribution(model, c)
    assert dist.batch_shape.as_list() == [3]
    assert dist.event_shape.as_list() == [8, 12, 2]
    assert to_np(dist.batch_shape_tensor()).tolist() == [3]
    assert to_np(dist.event_shape_tensor()).tolist() == [8, 12, 2]
    assert dist.distribution.event_shape.as_list() == [8 * 12 * 2]
    assert tuple(dist.sample(2, seed=(1, 2)).shape) == (2, 3, 8, 12, 2)
    assert tuple(dist.log_prob(x).shape) == (3,)


def test_log_prob_equals_the_models(model):
    from cinn.tfp import as_distribution

    x, c = data()
    dist = as_distribution(model, c)
    expected = to_np(model.log_prob(x, c))
    np.testing.assert_allclose(to_np(dist.log_prob(x)), expected, rtol=1e-5, atol=1e-3)
    # with sample dimensions in front: [n, B, H, W, C] -> [n, B]
    xs = np.stack([x, 0.5 * x])
    lp = to_np(dist.log_prob(xs))
    assert lp.shape == (2, 3)
    np.testing.assert_allclose(lp[1], to_np(model.log_prob(0.5 * x, c)), rtol=1e-5, atol=1e-3)


def test_samples_for_a_fixed_seed_equal_the_models(model):
    import tensorflow as tf

    from cinn.tfp import as_distribution

    _, c = data()
    dist = as_distribution(model, c)
    seed = tf.constant([3, 4], tf.int32)
    x = to_np(dist.sample(2, seed=seed))
    assert np.array_equal(x, to_np(dist.sample(2, seed=seed)))  # same seed, same samples
    z = to_np(dist.distribution.sample(2, seed=seed))            # [n, B, D]
    assert z.shape == (2, 3, 192)
    expected = to_np(model.sample(c, n=2, z=z.transpose(1, 0, 2).reshape(6, -1)))
    assert np.abs(x.transpose(1, 0, 2, 3, 4) - expected).max() <= 1e-5
    # and the density of a sample is the model's
    np.testing.assert_allclose(to_np(dist.log_prob(x[0])), to_np(model.log_prob(x[0], c)),
                               rtol=1e-5, atol=1e-3)


def test_bijector_round_trip_and_log_det(model):
    from cinn.tfp import as_distribution

    x, c = data(b=2, h=4, w=4)
    bij = as_distribution(model, c).bijector
    z = bij.inverse(x)
    np.testing.assert_allclose(to_np(bij.forward(z)), x, atol=1e-4)
    _, log_det = model.encode(x, c)
    np.testing.assert_allclose(to_np(bij.inverse_log_det_jacobian(x, event_ndims=3)),
                               to_np(log_det), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(to_np(bij.forward_log_det_jacobian(z, event_ndims=1)),
                               -to_np(log_det), rtol=1e-5, atol=1e-3)


def test_sample_and_log_prob_decodes_once_and_never_encodes(model, monkeypatch):
    """The forward log-det-Jacobian is decode's own (``decode_and_log_det``)."""
    from cinn.tfp import as_distribution

    _, c = data(b=2, h=4, w=4)
    dist = as_distribution(model, c)
    calls = []
    encode, decode = model.encode, model.decode_and_log_det
    monkeypatch.setattr(model, "encode", lambda *a, **k: calls.append("encode") or encode(*a, **k))
    monkeypatch.setattr(model, "decode_and_log_det",
                        lambda *a, **k: calls.append("decode") or decode(*a, **k))
    x, log_prob = dist.experimental_sample_and_log_prob(3, seed=(1, 2))
    assert calls == ["decode"]
    assert tuple(x.shape) == (3, 2, 4, 4, 2) and tuple(log_prob.shape) == (3, 2)
    monkeypatch.undo()
    for i in range(3):
        np.testing.assert_allclose(to_np(log_prob[i]), to_np(model.log_prob(x[i], c)),
                                   rtol=1e-5, atol=1e-3)


def test_works_inside_tf_function(model):
    import tensorflow as tf

    from cinn.tfp import as_distribution

    x, c = data(b=2)

    @tf.function(autograph=False)
    def log_prob(x, c):
        return as_distribution(model, c).log_prob(x)

    np.testing.assert_allclose(to_np(log_prob(x, c)), to_np(model.log_prob(x, c)),
                               rtol=1e-5, atol=1e-3)


def test_unconditional_vector_flow():
    from cinn import ConditionalINN
    from cinn.tfp import as_distribution

    model = ConditionalINN((3,), None, [{"blocks": 2, "subnet": {"hidden": 8}}], seed=0)
    randomize(model, 0.1)
    dist = as_distribution(model)
    assert dist.batch_shape.as_list() == [] and dist.event_shape.as_list() == [3]
    x = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    np.testing.assert_allclose(to_np(dist.log_prob(x)), to_np(model.log_prob(x)),
                               rtol=1e-5, atol=1e-4)
    assert tuple(dist.sample(4, seed=(0, 1)).shape) == (4, 3)


def test_shape_errors_are_clear(model):
    from cinn.tfp import as_distribution

    with pytest.raises(ValueError, match="condition must have shape"):
        as_distribution(model, np.zeros((1, 8, 8, 3), "float32"))
