"""``cinn.precision``: with ``full_float32`` the linear maps that ``x`` itself goes through
are traced at full float32 precision on JAX (on a GPU JAX would run them in TF32 by
default: relative errors of about 1e-3, and the flow no longer inverts), the subnets are
not. What is traced is checked here, on any device; that the flow then inverts on a GPU
is what tests/test_blocks.py and tests/test_model.py check when run there. On
TensorFlow, whose TF32 switch is process-wide, building a model on a GPU with TF32 on
warns once."""
import keras
import numpy as np
import pytest
from helpers import randomize

from cinn import blocks as B

jax_only = pytest.mark.skipif(keras.backend.backend() != "jax",
                              reason="the precision scope acts on JAX only")

FULL = "precision=(Precision.HIGHEST, Precision.HIGHEST)"


def traced(fn, *args):
    import jax

    return str(jax.make_jaxpr(fn)(*args))


@jax_only
def test_conv1x1_products_are_full_float32_both_ways():
    block = B.InvertibleConv1x1(seed=1)
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype("float32")
    block(x)
    for inverse in (False, True):
        text = traced(lambda v: block(v, inverse=inverse)[0], x)
        products = text.count("dot_general[")
        assert products >= 3, text                    # P L U, and W (or W^-1) on x
        assert text.count(FULL) == products, text


@jax_only
def test_conv1x1_gradient_products_are_full_float32():
    import jax

    block = B.InvertibleConv1x1(seed=1)
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype("float32")
    block(x)
    text = traced(jax.grad(lambda v: block(v)[0].sum()), x)
    assert text.count("dot_general[") == text.count(FULL) > 0, text


@jax_only
def test_subnets_keep_the_default_precision():
    block = B.AffineCoupling({"hidden": 8})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 4, 4)).astype("float32")
    c = rng.standard_normal((2, 4, 4, 3)).astype("float32")
    block(x, c)
    randomize(block)
    text = traced(lambda v, w: block(v, w)[0], x, c)
    assert "conv_general_dilated[" in text
    assert "HIGHEST" not in text, text


@jax_only
def test_colour_matrices_are_full_float32():
    from cinn.apps.colorization.color import lab_to_rgb, rgb_to_lab

    rgb = np.random.default_rng(0).uniform(0, 1, (4, 4, 3)).astype("float32")
    for fn in (rgb_to_lab, lambda v: lab_to_rgb(rgb_to_lab(v))):
        text = traced(fn, rgb)
        assert text.count("dot_general[") == text.count(FULL) > 0, text


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's TF32 switch")
def test_tensorflow_tf32_on_a_gpu_warns_once(monkeypatch):
    import warnings

    import tensorflow as tf

    import cinn.precision as P
    from cinn import ConditionalINN

    def model():
        return ConditionalINN((None, None, 2), (None, None, 1), [{"blocks": 1}], seed=0)

    monkeypatch.setattr(P, "_warned", False)
    with warnings.catch_warnings():  # this machine: no GPU, no warning
        warnings.simplefilter("error")
        model().build()
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    with pytest.warns(UserWarning, match="enable_tensor_float_32_execution"):
        model().build()
    with warnings.catch_warnings():  # once per process
        warnings.simplefilter("error")
        model().build()
    monkeypatch.setattr(P, "_warned", False)
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        with warnings.catch_warnings():  # TF32 off: exact, no warning
            warnings.simplefilter("error")
            model().build()
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(True)
