"""Full float32 precision for the flow's own linear maps, on any device.

On GPUs with tensor cores JAX runs float32 matrix products and convolutions in TF32
by default (10 mantissa bits: relative errors of about 1e-3). A flow's subnets may
compute in any precision, since a coupling's inverse evaluates its subnet on the same
input as its forward pass; a linear map applied to ``x`` itself (the invertible 1x1
convolution and its inverse, the colour-space matrices of the colorization app) may
not. With TF32 on an H200, an invertible 1x1 convolution inverted its own output only
to 1.8e-3, a three-level model to 3.3e-3, its log|det J| missed the autodiff
Jacobian's by 4e-3, and gradients by inversion differed from standard backpropagation
by up to 8%.

``keras.ops`` has no precision argument. ``full_float32()`` (for your own blocks' linear
maps too) scopes JAX's default matmul precision to float32 for the operations traced
inside it (read while tracing, so it holds inside ``jit``; their gradients keep it).
Elsewhere it does nothing: CPUs compute float32 in float32, and TensorFlow's TF32 switch
is process-wide (``tf.config.experimental.enable_tensor_float_32_execution(False)``,
left to the user; README, "Precision on GPUs"): ``warn_if_tf32()``, called when a model
is built, says so once per process where it applies.
"""
import contextlib
import warnings

import keras

_warned = False


@contextlib.contextmanager
def full_float32():
    """Operations traced inside run at full float32 precision (JAX; a no-op elsewhere)."""
    if keras.backend.backend() == "jax":
        import jax

        with jax.default_matmul_precision("float32"):
            yield
    else:
        yield


def warn_if_tf32():
    """Once per process, on TensorFlow with a GPU and TF32 on: warn that inverses are
    exact only to about 1e-3, and how to switch TF32 off."""
    global _warned
    if _warned or keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    if (tf.config.experimental.tensor_float_32_execution_enabled()
            and tf.config.list_physical_devices("GPU")):
        _warned = True
        warnings.warn(
            "cinn: TensorFlow may run float32 products in TF32 on this GPU, and then the "
            "flow's inverse and log-det are only good to about 1e-3; for exact ones call "
            "tf.config.experimental.enable_tensor_float_32_execution(False) first",
            stacklevel=3)
