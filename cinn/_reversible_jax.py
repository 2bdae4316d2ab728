"""JAX side of ``cinn.reversible``: a reversible segment as a ``jax.custom_vjp``.

Why a module of its own: the custom-gradient mechanism is backend-specific.
``jax.custom_vjp`` cannot close over traced values of the function it
differentiates, and Keras trains statelessly on JAX (the trainer maps every
variable to a traced value in a ``StatelessScope``), so the blocks' weights are
explicit inputs of the custom function and the blocks run under an inner
``StatelessScope`` mapping their variables to those inputs.
"""
import jax
import jax.numpy as jnp
import numpy as np


def _zero_cotangent(v):
    if jnp.issubdtype(v.dtype, jnp.inexact):
        return jnp.zeros_like(v)
    return np.zeros(v.shape, dtype=jax.dtypes.float0)


def reversible(segment, x, c):
    trainable, other = segment.values()

    @jax.custom_vjp
    def run(x, c, trainable, other):
        return segment.forward(x, c, trainable, other)

    def fwd(x, c, trainable, other):
        y, log_det = segment.forward(x, c, trainable, other)
        # residuals: the segment's output, not one activation inside it
        return (y, log_det), (y, c, trainable, other)

    def bwd(res, cts):
        y, c, trainable, other = res
        gy, g_log_det = cts
        gc = None if c is None else jnp.zeros(c.shape, jnp.float32)
        g_trainable = [None] * len(segment.layers)
        for i in reversed(range(len(segment.layers))):
            # the block's input, recomputed from its output by the inverse
            x, _ = segment.apply(i, trainable[i], other[i], y, c, inverse=True)

            def local(x, c, w, i=i):
                return segment.apply(i, w, other[i], x, c)

            _, vjp = jax.vjp(local, x, c, trainable[i])
            gy, gc_i, g_trainable[i] = vjp((gy.astype(x.dtype), g_log_det))
            if c is not None:
                gc = gc + gc_i.astype(jnp.float32)
            y = x
        if c is not None:
            gc = gc.astype(c.dtype)
        g_other = [[_zero_cotangent(v) for v in vs] for vs in other]
        return gy, gc, g_trainable, g_other

    run.defvjp(fwd, bwd)
    return run(x, c, trainable, other)
