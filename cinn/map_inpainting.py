"""MAP inpainting with an unconditional flow (the NICE paper's experiment, Dinh et
al. 2015): the hidden pixels ``x_h`` maximise ``log p(x_h, x_o)`` of a trained
flow, the observed pixels ``x_o`` fixed.

``inpaint_map(flow, x, mask)`` runs projected gradient ascent (Adam steps on the
hidden pixels, clipped to the data range after each) on ``log p`` of any model
with a ``log_prob(x, c=None)`` method built from Keras layers (``ConditionalINN``
and the ``cinn.density`` flows). The gradient with respect to the image comes
from the backend: ``jax.value_and_grad`` under ``jax.jit`` on JAX, a
``tf.GradientTape`` in a ``tf.function`` on TensorFlow; other backends raise a
``CinnError``.
"""
import keras
import numpy as np
from keras import ops

from cinn.errors import CinnError


def log_prob_and_grad(flow, c=None):
    """A compiled function ``x -> (log p(x | c) per sample, d sum(log p) / dx)``,
    both NumPy arrays."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def pure(trainable, non_trainable, x, c):
            mapping = list(zip(flow.trainable_variables, trainable)) + list(
                zip(flow.non_trainable_variables, non_trainable))
            with keras.StatelessScope(state_mapping=mapping):
                lp = flow.log_prob(x, c)
            return jnp.sum(lp), lp

        grad = jax.jit(jax.value_and_grad(pure, argnums=2, has_aux=True))

        def run(x):
            (_, lp), g = grad([v.value for v in flow.trainable_variables],
                              [v.value for v in flow.non_trainable_variables], x, c)
            return np.asarray(lp), np.asarray(g)

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                lp = flow.log_prob(x, c)
                total = tf.reduce_sum(lp)
            return lp, tape.gradient(total, x)

        def run(x):
            lp, g = step(tf.convert_to_tensor(x))
            return lp.numpy(), g.numpy()

        return run
    raise CinnError(f"MAP inpainting needs the TensorFlow or JAX backend, not {backend!r} "
                    "(set KERAS_BACKEND)")


def inpaint_map(flow, x, mask, c=None, steps=500, lr=0.01, init=None, value_range=(0.0, 1.0),
                history=False):
    """``x_h = argmax log p(x_h, x_o | c)`` over the hidden pixels, by ``steps`` Adam
    steps of size ``lr`` on ``log p`` (projected onto ``value_range``).

    * ``x``: images (batch, ...) in the flow's data space; only the observed pixels
      are read.
    * ``mask``: 1 (True) where a pixel is observed, 0 where hidden; broadcast to ``x``.
    * ``init``: the starting fill of the hidden pixels (an array like ``x``, or a
      scalar); default: the mean of each image's observed pixels.
    * ``c``: condition of a conditional flow (fixed).

    Returns the inpainted images (NumPy float32; the observed pixels are exactly
    those of ``x``), and with ``history=True`` also the mean ``log p`` in nats
    before each step and after the last, a list of ``steps + 1`` floats.
    """
    x = np.asarray(ops.convert_to_numpy(x), np.float32)
    observed = np.broadcast_to(np.asarray(mask, np.float32), x.shape) > 0.5
    hidden = ~observed
    lo, hi = value_range
    if init is None:
        axes = tuple(range(1, x.ndim))
        counts = np.maximum(observed.sum(axis=axes, keepdims=True), 1)
        fill = np.broadcast_to((x * observed).sum(axis=axes, keepdims=True) / counts, x.shape)
    else:
        fill = np.broadcast_to(np.asarray(init, np.float32), x.shape)
    cur = np.where(observed, x, np.clip(fill, lo, hi)).astype(np.float32)
    if int(steps) < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    grad_fn = log_prob_and_grad(flow, None if c is None else ops.convert_to_tensor(c))
    m1 = np.zeros_like(cur)
    m2 = np.zeros_like(cur)
    b1, b2, eps = 0.9, 0.999, 1e-8
    trace = []
    for t in range(1, int(steps) + 2):
        lp, g = grad_fn(cur)
        trace.append(float(np.mean(lp)))
        if t > int(steps):
            break
        g = np.where(hidden, g, 0.0)
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        step = lr * (m1 / (1 - b1 ** t)) / (np.sqrt(m2 / (1 - b2 ** t)) + eps)
        cur = np.where(hidden, np.clip(cur + step, lo, hi), x).astype(np.float32)
    return (cur, trace) if history else cur


def psnr_hidden(x, x_hat, mask, peak=1.0):
    """PSNR (dB) over the hidden pixels (``mask == 0``) of each image."""
    x = np.asarray(x, np.float64)
    hidden = np.broadcast_to(np.asarray(mask) <= 0.5, x.shape)
    err = (np.asarray(x_hat, np.float64) - x) ** 2 * hidden
    axes = tuple(range(1, x.ndim))
    mse = err.sum(axis=axes) / np.maximum(hidden.sum(axis=axes), 1)
    return 10 * np.log10(peak ** 2 / np.maximum(mse, 1e-12))
