"""Inpainting with an unconditional flow: the MAP completion (the NICE paper's
experiment, Dinh et al. 2015) and posterior samples of the hidden pixels.

* ``inpaint_map(flow, x, mask)``: the hidden pixels ``x_h`` maximise
  ``log p(x_h, x_o)`` of a trained flow, the observed pixels ``x_o`` fixed, by
  projected gradient ascent (Adam steps on the hidden pixels, clipped to the data
  range after each).
* ``inpaint_posterior(flow, x, mask, n)``: ``n`` samples of ``p(x_h | x_o)``, drawn
  in the flow's latent space, where the prior is ``N(0, I)``: ``z`` from
  ``p(z | x_o) ~ N(z; 0, I) N(x_o; g(z)_o, sigma^2)`` by the Metropolis-adjusted
  Langevin algorithm (MALA), ``x = g(z)``. ``sigma`` is the tolerance on the observed
  pixels (as ``sigma -> 0`` this is the flow's exact conditional); the returned
  images carry the observed pixels exactly.

Both work with any model with ``log_prob(x, c=None)`` (and, for the posterior,
``encode``/``decode``) built from Keras layers (``ConditionalINN`` and the
``cinn.density`` flows). Gradients come from the backend: ``jax.value_and_grad``
under ``jax.jit`` on JAX, a ``tf.GradientTape`` in a ``tf.function`` on
TensorFlow; other backends raise a ``CinnError``.
"""
import keras
import numpy as np
from keras import ops

from cinn.errors import CinnError


def _value_and_grad(flow, fn):
    """A compiled ``x -> (fn(x) per sample, d sum(fn(x)) / dx)``, NumPy arrays;
    ``fn(x)`` is written with the flow's Keras layers and ``keras.ops``."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def pure(trainable, non_trainable, x):
            mapping = list(zip(flow.trainable_variables, trainable)) + list(
                zip(flow.non_trainable_variables, non_trainable))
            with keras.StatelessScope(state_mapping=mapping):
                v = fn(x)
            return jnp.sum(v), v

        grad = jax.jit(jax.value_and_grad(pure, argnums=2, has_aux=True))

        def run(x):
            (_, v), g = grad([w.value for w in flow.trainable_variables],
                             [w.value for w in flow.non_trainable_variables], x)
            return np.asarray(v), np.asarray(g)

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                v = fn(x)
                total = tf.reduce_sum(v)
            return v, tape.gradient(total, x)

        def run(x):
            v, g = step(tf.convert_to_tensor(x))
            return v.numpy(), g.numpy()

        return run
    raise CinnError(f"inpainting with a flow needs the TensorFlow or JAX backend, not "
                    f"{backend!r} (set KERAS_BACKEND)")


def log_prob_and_grad(flow, c=None):
    """A compiled function ``x -> (log p(x | c) per sample, d sum(log p) / dx)``,
    both NumPy arrays."""
    return _value_and_grad(flow, lambda x: flow.log_prob(x, c))


def _observed_and_fill(x, mask, init):
    """``observed`` (bool like ``x``) and the starting fill of the hidden pixels:
    ``init``, or each image's mean observed value."""
    observed = np.broadcast_to(np.asarray(mask, np.float32), x.shape) > 0.5
    if init is None:
        axes = tuple(range(1, x.ndim))
        counts = np.maximum(observed.sum(axis=axes, keepdims=True), 1)
        fill = np.broadcast_to((x * observed).sum(axis=axes, keepdims=True) / counts, x.shape)
    else:
        fill = np.broadcast_to(np.asarray(init, np.float32), x.shape)
    return observed, fill


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
    observed, fill = _observed_and_fill(x, mask, init)
    hidden = ~observed
    lo, hi = value_range
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


def inpaint_posterior(flow, x, mask, n=4, c=None, steps=400, sigma=0.1, init=None,
                      burn_in=None, step_size=1e-3, target_accept=0.574,
                      value_range=(0.0, 1.0), seed=0, history=False, progress=None):
    """``n`` samples per image of the hidden pixels given the observed ones: shape
    ``(batch, n, ...)``, NumPy float32, the observed pixels exactly those of ``x``.

    One MALA chain per sample, in the latent space: the target is ``log N(z; 0, I) -
    |m (g(z) - x)|^2 / (2 sigma^2)`` (``m``: the observed pixels; ``g``: the flow's
    ``decode``), so ``sigma`` is the tolerance on the observed pixels: smaller is
    closer to the exact conditional but mixes slower (the step size shrinks with
    ``sigma^2``; with ``sigma = 0.03`` 600 steps do not yet spread a unit-variance
    conditional, with the default 0.1 they do). Every chain
    starts at ``encode`` of ``x`` with its hidden pixels filled by ``init``: an
    array like ``x`` (e.g. ``inpaint_map``'s output) or a scalar, one start for
    the image's ``n`` chains; or an array of shape ``(batch, n, ...)``, a start per
    chain (over-dispersed starts, e.g. the hidden pixels of other images, let the
    chains reach modes that one start does not); default: each image's mean
    observed value. During the first ``burn_in`` steps (default half of
    ``steps``) each chain adapts its step size (from ``step_size``) towards the
    acceptance rate ``target_accept``; the state after ``steps`` steps is its
    sample, decoded and clipped to ``value_range`` (``None``: not clipped).

    * ``mask``: 1 (True) where a pixel is observed, 0 where hidden.
    * ``c``: condition of a conditional flow (fixed), one per image.
    * ``progress``: called as ``progress(step, steps, accept)`` after every step
      (``accept``: the fraction of chains that moved), e.g. to print a line.
    * ``history=True`` also returns ``{"accept": mean acceptance after the burn-in,
      "log_target": mean log target per step, "step_size": final mean step size}``.
    """
    x = np.asarray(ops.convert_to_numpy(x), np.float32)
    n, steps = int(n), int(steps)
    burn_in = steps // 2 if burn_in is None else int(burn_in)
    if n < 1 or steps < 0 or not 0 <= burn_in <= steps:
        raise ValueError(f"need n >= 1 and 0 <= burn_in <= steps, got n={n}, steps={steps}, "
                         f"burn_in={burn_in}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    rep = lambda a: np.repeat(a, n, axis=0)  # noqa: E731  (image i -> chains i*n ... i*n+n-1)
    per_chain = init is not None and np.ndim(init) == x.ndim + 1
    observed, fill = _observed_and_fill(x, mask, 0.0 if per_chain else init)
    if per_chain:  # a start per chain: (batch, n, ...) -> chains
        init = np.asarray(ops.convert_to_numpy(init), np.float32)
        if init.shape != (len(x), n) + x.shape[1:]:
            raise ValueError(f"a start per chain needs init of shape {(len(x), n) + x.shape[1:]} "
                             f"(batch, n, ...), got {init.shape}")
        fill = init.reshape((-1,) + x.shape[1:])
    else:
        fill = rep(fill)
    y, m = rep(x), rep(observed).astype(np.float32)
    start = np.where(m > 0.5, y, fill).astype(np.float32)
    cc = None if c is None else rep(np.asarray(ops.convert_to_numpy(c)))
    z = np.asarray(ops.convert_to_numpy(flow.encode(start, cc)[0]), np.float32)
    y_t, m_t = ops.convert_to_tensor(y), ops.convert_to_tensor(m)
    c_t = None if cc is None else ops.convert_to_tensor(cc)
    axes = tuple(range(1, x.ndim))

    def log_target(zz):
        r = (flow.decode(zz, c_t) - y_t) * m_t
        return (-0.5 * ops.sum(ops.square(zz), axis=1)
                - 0.5 * ops.sum(ops.square(r), axis=axes) / sigma ** 2)

    fn = _value_and_grad(flow, log_target)
    rng = np.random.default_rng(seed)
    eps = np.full((len(z), 1), float(step_size), np.float64)
    lp, g = fn(z)
    accepted, trace = [], []
    for t in range(steps):
        noise = rng.standard_normal(z.shape)
        prop = (z + 0.5 * eps * g + np.sqrt(eps) * noise).astype(np.float32)
        lp_p, g_p = fn(prop)
        fwd = np.sum((prop - z - 0.5 * eps * g) ** 2, axis=1)
        bwd = np.sum((z - prop - 0.5 * eps * g_p) ** 2, axis=1)
        log_alpha = lp_p - lp + (fwd - bwd) / (2 * eps[:, 0])
        log_alpha = np.where(np.isfinite(log_alpha), log_alpha, -np.inf)
        accept = np.log(rng.random(len(z))) < log_alpha
        z = np.where(accept[:, None], prop, z)
        lp = np.where(accept, lp_p, lp)
        g = np.where(accept[:, None], g_p, g)
        if t < burn_in:  # Robbins-Monro on log step size, per chain
            prob = np.exp(np.minimum(log_alpha, 0.0))
            eps *= np.exp(np.clip((prob - target_accept) / np.sqrt(t + 1.0), -1, 1))[:, None]
        else:
            accepted.append(accept.mean())
        trace.append(float(np.mean(lp)))
        if progress is not None:
            progress(t + 1, steps, float(accept.mean()))
    out = np.asarray(ops.convert_to_numpy(flow.decode(ops.convert_to_tensor(z), c_t)),
                     np.float32)
    if value_range is not None:
        out = np.clip(out, *value_range)
    out = np.where(m > 0.5, y, out).astype(np.float32)
    out = out.reshape((len(x), n) + x.shape[1:])
    if history:
        return out, {"accept": float(np.mean(accepted)) if accepted else None,
                     "log_target": trace, "step_size": float(np.mean(eps))}
    return out


def psnr_hidden(x, x_hat, mask, peak=1.0):
    """PSNR (dB) over the hidden pixels (``mask == 0``) of each image."""
    x = np.asarray(x, np.float64)
    hidden = np.broadcast_to(np.asarray(mask) <= 0.5, x.shape)
    err = (np.asarray(x_hat, np.float64) - x) ** 2 * hidden
    axes = tuple(range(1, x.ndim))
    mse = err.sum(axis=axes) / np.maximum(hidden.sum(axis=axes), 1)
    return 10 * np.log10(peak ** 2 / np.maximum(mse, 1e-12))
