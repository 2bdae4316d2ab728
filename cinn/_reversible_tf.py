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


def reversible(segment, x, c):
    trainable, other = segment.values()
    has_c = c is not None
    n_train, n_other = len(_flat(trainable)), len(_flat(other))
    args = [x] + ([c] if has_c else []) + _flat(trainable) + _flat(other)

    def unpack(args):
        args = [tf.stop_gradient(a) for a in args]
        x, rest = args[0], args[1:]
        c, rest = (rest[0], rest[1:]) if has_c else (None, rest)
        return (x, c, _nest(rest[:n_train], trainable),
                _nest(rest[n_train:n_train + n_other], other))

    @tf.custom_gradient
    def run(*args):
        x, c, w_train, w_other = unpack(args)
        y, log_det = segment.forward(x, c, w_train, w_other)

        def grad(gy, g_log_det):
            gy = tf.zeros_like(y) if gy is None else gy
            g_log_det = tf.zeros_like(log_det) if g_log_det is None else g_log_det
            gc = None if c is None else tf.zeros(tf.shape(c), tf.float32)
            g_train = [None] * len(segment.layers)
            h = y
            for i in reversed(range(len(segment.layers))):
                # the block's input, recomputed from its output by the inverse
                h, _ = segment.apply(i, w_train[i], w_other[i], h, c, inverse=True)
                sources = [h] + ([c] if has_c else []) + list(w_train[i])
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(sources)
                    y_i, ld_i = segment.apply(i, w_train[i], w_other[i], h, c)
                grads = tape.gradient([y_i, ld_i], sources,
                                      output_gradients=[tf.cast(gy, y_i.dtype), g_log_det],
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
                gy = grads[0]
                if has_c:
                    gc = gc + tf.cast(grads[1], tf.float32)
                g_train[i] = grads[1 + has_c:]
            out = [gy] + ([tf.cast(gc, c.dtype)] if has_c else [])
            return out + _flat(g_train) + [None] * n_other

        return (y, log_det), grad

    y, log_det = run(*args)
    return y, log_det
