"""TensorFlow side of ``cinn.reversible``: a reversible segment as a ``tf.custom_gradient``.

Why a module of its own: the custom-gradient mechanism is backend-specific.
The weights are explicit tensor inputs of the custom function (read from the
variables outside it, so the surrounding tape, also a replica's tape under a
``tf.distribute`` strategy, routes their gradients to the variables) and the
blocks run under a ``keras.StatelessScope`` mapping their variables to those
tensors, so no variable is read inside. The forward pass works on
``tf.stop_gradient`` copies of the inputs: in eager mode ``tf.custom_gradient``
does not stop the surrounding tape from recording the inner operations (which
would keep every activation alive); with the copies nothing inside is watched.

The backward pass is ``cinn.reversible.Segment.backward`` with a
``tf.GradientTape`` VJP. Its ordering (``cinn.reversible.exact_zero``) matters here
too: TensorFlow's graph executor runs every op as soon as its inputs exist, so
without it all the inverses (they need only the segment's output) and local
forward passes would run during the forward pass and keep their activations
until the backward pass; XLA (``jit_compile``) reorders likewise.
"""
import tensorflow as tf


def _flat(nested):
    return [t for ts in nested for t in ts]


def _nest(flat, like):
    out, k = [], 0
    for ts in like:
        out.append(list(flat[k:k + len(ts)]))
        k += len(ts)
    return out


def _leaves(p):
    return [] if p is None else list(p) if isinstance(p, (list, tuple)) else [p]


def _vjp(fn, *primals):
    """``(fn(*primals), pullback)``: ``pullback(cotangents)`` gives the gradient of
    each primal (a tensor, ``None`` or a list of tensors, like the primal)."""
    sources = [t for p in primals for t in _leaves(p)]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(sources)
        out = fn(*primals)

    def pullback(cotangents):
        grads = tape.gradient(list(out), sources, output_gradients=list(cotangents),
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        result, k = [], 0
        for p in primals:
            n = len(_leaves(p))
            part = grads[k:k + n]
            result.append(None if p is None else part if isinstance(p, (list, tuple))
                          else part[0])
            k += n
        return tuple(result)

    return out, pullback


def reversible(segment, x, c):
    trainable, other = segment.values()
    has_c = c is not None
    n_train, n_other = len(_flat(trainable)), len(_flat(other))
    args = [x] + ([c] if has_c else []) + _flat(trainable) + _flat(other)

    @tf.custom_gradient
    def run(*args):
        args = [tf.stop_gradient(a) for a in args]
        x, rest = args[0], args[1:]
        c, rest = (rest[0], rest[1:]) if has_c else (None, rest)
        w_train = _nest(rest[:n_train], trainable)
        w_other = _nest(rest[n_train:n_train + n_other], other)
        y, log_det = segment.forward(x, c, w_train, w_other)

        def grad(gy, g_log_det):
            gy = tf.zeros_like(y) if gy is None else gy
            g_log_det = tf.zeros_like(log_det) if g_log_det is None else g_log_det
            gx, gc, g_train = segment.backward(y, c, w_train, w_other, gy, g_log_det, _vjp)
            return [gx] + ([gc] if has_c else []) + _flat(g_train) + [None] * n_other

        return (y, log_det), grad

    y, log_det = run(*args)
    return y, log_det
