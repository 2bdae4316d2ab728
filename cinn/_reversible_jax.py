"""JAX side of ``cinn.reversible``: a reversible segment as a ``jax.custom_vjp``.

Why a module of its own: the custom-gradient mechanism is backend-specific.
``jax.custom_vjp`` cannot close over traced values of the function it
differentiates, and Keras trains statelessly on JAX (the trainer maps every
variable to a traced value in a ``StatelessScope``), so the blocks' weights are
explicit inputs of the custom function and the blocks run under an inner
``StatelessScope`` mapping their variables to those inputs.

The backward pass itself is ``cinn.reversible.Segment.backward`` with
``jax.vjp``. Ordering (``cinn.reversible.exact_zero``): XLA schedules the instructions of one
program freely, and left alone it runs the inverses early (they need only the
segment's output), merges them with the forward pass, or defers the weight
gradients to the end; each keeps every block's activations alive at once (an
``optimization_barrier`` does not prevent it: XLA's CPU pipeline drops it before
scheduling, and a ``lax.cond`` per block does, but XLA:CPU runs convolution
gradients inside a conditional some 40x slower). So each block's recomputation
takes an exact zero computed from the input gradient of the block after it and
the weight and condition gradients of the block after that one: a data
dependence XLA cannot remove, with one block of slack for the weight gradients.
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
        gx, gc, g_trainable = segment.backward(y, c, trainable, other, gy, g_log_det, jax.vjp)
        g_other = [[_zero_cotangent(v) for v in vs] for vs in other]
        return gx, gc, g_trainable, g_other

    run.defvjp(fwd, bwd)
    return run(x, c, trainable, other)
