"""``cinn.precision.full_float32``: the linear maps that ``x`` itself goes through are
traced at full float32 precision on JAX (on a GPU JAX would run them in TF32 by default:
relative errors of about 1e-3, and the flow no longer inverts), the subnets are not.
What is traced is checked here, on any device; that the flow then inverts on a GPU is
what tests/test_blocks.py and tests/test_model.py check when run there."""
import numpy as np
import pytest
from helpers import randomize

from cinn import blocks as B

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax",
                                reason="the precision scope acts on JAX only")

FULL = "precision=(Precision.HIGHEST, Precision.HIGHEST)"


def traced(fn, *args):
    import jax

    return str(jax.make_jaxpr(fn)(*args))


def test_conv1x1_products_are_full_float32_both_ways():
    block = B.InvertibleConv1x1(seed=1)
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype("float32")
    block(x)
    for inverse in (False, True):
        text = traced(lambda v: block(v, inverse=inverse)[0], x)
        products = text.count("dot_general[")
        assert products >= 3, text                    # P L U, and W (or W^-1) on x
        assert text.count(FULL) == products, text


def test_conv1x1_gradient_products_are_full_float32():
    import jax

    block = B.InvertibleConv1x1(seed=1)
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype("float32")
    block(x)
    text = traced(jax.grad(lambda v: block(v)[0].sum()), x)
    assert text.count("dot_general[") == text.count(FULL) > 0, text


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


def test_colour_matrices_are_full_float32():
    from apps.colorization.color import lab_to_rgb, rgb_to_lab

    rgb = np.random.default_rng(0).uniform(0, 1, (4, 4, 3)).astype("float32")
    for fn in (rgb_to_lab, lambda v: lab_to_rgb(rgb_to_lab(v))):
        text = traced(fn, rgb)
        assert text.count("dot_general[") == text.count(FULL) > 0, text
