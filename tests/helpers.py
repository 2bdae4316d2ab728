"""Test helpers: backend-specific autodiff Jacobians and weight perturbation."""
import keras
import numpy as np
from keras import ops


def to_np(x):
    return np.asarray(ops.convert_to_numpy(x))


def randomize(layer, scale=0.1, seed=0):
    """Add noise to every trainable weight, so zero-initialised blocks do something."""
    rng = np.random.default_rng(seed)
    for v in layer.trainable_weights:
        v.assign(to_np(v) + scale * rng.standard_normal(v.shape).astype("float32"))


def jacobian_logdet(fn, x):
    """``log|det d fn(x) / dx|`` of the flattened map, for one sample ``x`` (1, ...).

    Computed by automatic differentiation of the backend in use.
    """
    x = np.asarray(x, "float32")
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def flat(v):
            return jnp.reshape(fn(jnp.reshape(v, x.shape)), (-1,))

        jac = jax.jacfwd(flat)(jnp.asarray(x.reshape(-1)))
    elif backend == "tensorflow":
        import tensorflow as tf

        v = tf.constant(x.reshape(-1))
        with tf.GradientTape() as tape:
            tape.watch(v)
            y = tf.reshape(fn(tf.reshape(v, x.shape)), (-1,))
        jac = tape.jacobian(y, v)
    else:  # pragma: no cover
        raise NotImplementedError(backend)
    jac = np.asarray(jac, "float64")
    assert jac.shape[0] == jac.shape[1], jac.shape
    return np.linalg.slogdet(jac)[1]
