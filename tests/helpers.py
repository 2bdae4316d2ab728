"""Test helpers: backend-specific autodiff Jacobians, weight perturbation, the examples."""
import importlib.util
from pathlib import Path

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


def jacobian(fn, x):
    """``d fn(x) / dx`` of the flattened map at ``x``: shape (outputs, inputs).

    Computed by automatic differentiation of the backend in use. On JAX the Jacobian is
    compiled as one program (``jax.jit``): op-by-op, every primitive of the forward-mode
    pass is compiled on its own, several times slower for these tiny maps.
    """
    x = np.asarray(x, "float32")
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def flat(v):
            return jnp.reshape(fn(jnp.reshape(v, x.shape)), (-1,))

        jac = jax.jit(jax.jacfwd(flat))(jnp.asarray(x.reshape(-1)))
    elif backend == "tensorflow":
        import tensorflow as tf

        v = tf.constant(x.reshape(-1))
        with tf.GradientTape() as tape:
            tape.watch(v)
            y = tf.reshape(fn(tf.reshape(v, x.shape)), (-1,))
        jac = tape.jacobian(y, v)
    else:  # pragma: no cover
        raise NotImplementedError(backend)
    return np.asarray(jac, "float64")


def jacobian_logdet(fn, x):
    """``log|det d fn(x) / dx|`` of the flattened map, for one sample ``x`` (1, ...).

    Computed by automatic differentiation of the backend in use.
    """
    jac = jacobian(fn, x)
    assert jac.shape[0] == jac.shape[1], jac.shape
    return np.linalg.slogdet(jac)[1]


def gradients(fn, *args):
    """The gradients of the scalar ``fn(*args)`` with respect to each of ``args``
    (NumPy arrays), by the backend in use."""
    args = [np.asarray(a, "float32") for a in args]
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grads = jax.grad(fn, argnums=tuple(range(len(args))))(*args)
    elif backend == "tensorflow":
        import tensorflow as tf

        vs = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            for v in vs:
                tape.watch(v)
            out = fn(*vs)
        grads = tape.gradient(out, vs)
    else:  # pragma: no cover
        raise NotImplementedError(backend)
    return [to_np(g) for g in grads]


#: tiny, fast configs of the sampling apps (property and robustness tests)
TINY_APPS = {
    "colorization": {"levels": 2, "blocks": 1, "subnet": {"hidden": 8, "depth": 1},
                     "cond_channels": 4, "cond_hidden": 8},
    "inpainting": {"levels": 2, "blocks": 1, "subnet": {"hidden": 8}, "cond_channels": 4,
                   "cond_hidden": 8},
}


def tiny_app_models(folder):
    """``{app: (model, path of its .keras file in folder)}`` for ``TINY_APPS``,
    randomised so that samples differ from the identity map."""
    import importlib

    out = {}
    for app, cfg in TINY_APPS.items():
        model = importlib.import_module(f"cinn.apps.{app}.model").build_model(cfg)
        randomize(model, scale=0.05, seed=1)
        path = folder / f"{app}.keras"
        model.save(path)
        out[app] = (model, path)
    return out


def example(name):
    """The module ``examples/NAME.py`` (the examples folder is not a package)."""
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
