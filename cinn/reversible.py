"""Backpropagation by inversion: deep flows whose training memory does not grow with depth.

``ConditionalINN(..., backprop="inverse")`` treats the sequence of blocks of each
level (downsampling, transition, every flow step; not the split) as one
*reversible segment*. Its forward pass runs the blocks and keeps nothing but the
segment's output. Its backward pass walks the blocks in reverse: each block's
input is recomputed from its output with the block's inverse,
``x = block(y, c, inverse=True)``, and the block's vector-Jacobian product (for
its input, the condition features and its weights) comes from a local forward
pass of that block alone. Only one block's activations exist at a time, so the
activation memory of a level no longer grows with its number of steps (RevNet,
i-RevNet; memcnn and RevLib in PyTorch). The conditioning network and the
splits keep ordinary backpropagation.

Cost: one more forward pass of each block (its inverse) in the backward pass.
Exactness: the recomputed inputs carry the round-off of the inverse, which
grows with depth; the soft clamp bounds every scale in ``[exp(-clamp),
exp(clamp)]``, which is what keeps it small. See the README (section
"Deep flows in constant memory") for measured figures and when the mode is safe.

The gradient plumbing differs per backend (``cinn._reversible_jax``:
``jax.custom_vjp``; ``cinn._reversible_tf``: ``tf.custom_gradient``). Both take
the blocks' weights as explicit inputs and evaluate the blocks under a
``keras.StatelessScope`` that maps every variable of the segment to those
inputs, so the weights get gradients like any other input (also on JAX, where
Keras trains statelessly, and under ``tf.distribute``). Other backends, blocks
not built yet and ActNorm's data-dependent initialisation run the plain loop.
"""
import keras
from keras import ops

BACKPROP_MODES = ("standard", "inverse")


def check_backprop(mode):
    """``mode`` if it is a known backprop mode, else a ``ValueError``."""
    mode = "standard" if mode is None else str(mode)
    if mode not in BACKPROP_MODES:
        raise ValueError(f"backprop must be one of {', '.join(BACKPROP_MODES)}, got {mode!r}")
    return mode


def _is_float(v):
    return "float" in str(v.dtype)


class Segment:
    """A sequence of invertible blocks as a pure function of ``(x, c, weights)``.

    ``weights`` is ``(trainable, other)``: per block, the values of its trainable
    floating-point variables and of all its other variables (non-trainable,
    integer), in the order of ``self.trainable`` and ``self.other``.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        self.trainable, self.other = [], []
        for layer in self.layers:
            train = [v for v in layer.trainable_weights if _is_float(v)]
            ids = {id(v) for v in train}
            self.trainable.append(train)
            self.other.append([v for v in layer.weights if id(v) not in ids])

    def values(self):
        """The current values of the segment's variables: ``(trainable, other)``."""
        def read(v):
            return ops.convert_to_tensor(v.value)

        return ([[read(v) for v in vs] for vs in self.trainable],
                [[read(v) for v in vs] for vs in self.other])

    def scope(self, i, trainable, other):
        """A scope in which block ``i``'s variables read ``trainable`` and ``other``."""
        mapping = list(zip(self.trainable[i], trainable)) + list(zip(self.other[i], other))
        return keras.StatelessScope(state_mapping=mapping, initialize_variables=False)

    def apply(self, i, trainable, other, x, c, inverse=False):
        """Block ``i`` on ``x`` with its variables set to ``trainable`` and ``other``."""
        with self.scope(i, trainable, other):
            return self.layers[i](x, c, inverse=inverse)

    def forward(self, x, c, trainable, other):
        """``(y, log_det)`` of the whole segment."""
        log_det = None
        for i in range(len(self.layers)):
            x, ld = self.apply(i, trainable[i], other[i], x, c)
            log_det = ld if log_det is None else log_det + ld
        return x, log_det

    def backward(self, y, c, trainable, other, gy, g_log_det, vjp):
        """The backward pass from the segment's output ``y`` and the gradients
        ``gy``, ``g_log_det`` of its outputs: ``(gx, gc, g_trainable)``.

        ``vjp(fn, *primals) -> (outputs, pullback)`` is the backend's
        vector-Jacobian product. Blocks are taken one at a time, last first:
        each one's input is recomputed from its output once the block after it
        has given its input gradient and the block after that one its weight and
        condition gradients (``exact_zero``: added to the block's output and
        weights, so that nothing of its step, not even a relayout of its weights,
        can be computed earlier and kept). The one block of lag lets a block's
        weight gradients run beside the next block's recomputation, while at most
        two blocks' activations are alive at once, whatever the depth.
        """
        gc = None if c is None else ops.zeros(ops.shape(c), "float32")
        g_trainable = [None] * len(self.layers)
        newer, older = [], [g_log_det]  # weight and gc gradients of blocks i + 1, i + 2
        for i in reversed(range(len(self.layers))):
            step = _FUSED.get(type(self.layers[i]), _generic_step)
            zero = exact_zero([gy] + older)  # gx of block i + 1, weights of i + 2
            w = [v + ops.cast(zero, v.dtype) for v in trainable[i]]
            y, gy, gc_i, g_trainable[i] = step(self, i, y + ops.cast(zero, y.dtype), gy,
                                                g_log_det, c, w, other[i], vjp)
            if c is not None:
                gc = gc + ops.cast(gc_i, "float32")
            # the running sum gc, not gc_i: else the sums wait for the end, and every
            # block's gc_i with them
            older, newer = newer, [gc] + list(g_trainable[i])
        return gy, None if c is None else ops.cast(gc, c.dtype), g_trainable


def _per_sample(g, like):
    """``g`` of shape (batch,) reshaped to broadcast against ``like``."""
    return ops.reshape(g, (-1,) + (1,) * (len(like.shape) - 1))


def _generic_step(segment, i, y, gy, g_log_det, c, w, other, vjp):
    """Any block: its input by the inverse, then the VJP of its forward pass there."""
    x, _ = segment.apply(i, w, other, y, c, inverse=True)
    _, pullback = vjp(lambda x, c, w: segment.apply(i, w, other, x, c), x, c, w)
    gx, gc, gw = pullback((ops.cast(gy, x.dtype), g_log_det))
    return x, gx, gc, gw


def _coupling_step(segment, i, y, gy, g_log_det, c, w, other, vjp):
    """``AffineCoupling`` (``y2 = x2 exp(s) + t``, ``(s, t) = params([x1, c])``,
    log-det ``sum(s)``), fused: the inverse evaluates the subnet at ``x1 = y1``,
    which is where the forward pass evaluates it, so one evaluation with its VJP
    serves both (a generic step would run the subnet twice)."""
    from cinn.blocks.base import split_channels
    from cinn.subnets import concat_condition

    layer = segment.layers[i]
    k = layer.split_at
    y1, y2 = split_channels(y, k)

    def params(x1, c, w):
        with segment.scope(i, w, other):
            return layer.params(concat_condition(x1, c))

    (s, t), pullback = vjp(params, y1, c, w)
    scale = ops.exp(s)
    x2 = (y2 - t) * ops.exp(-s)  # as the block's inverse computes it
    gy1, gy2 = split_channels(gy, k)
    g_s = gy2 * x2 * scale + _per_sample(g_log_det, s)
    gx1, gc, gw = pullback((g_s, gy2))
    return (ops.concatenate([y1, x2], axis=-1),
            ops.concatenate([gy1 + gx1, gy2 * scale], axis=-1), gc, gw)


def _injector_step(segment, i, y, gy, g_log_det, c, w, other, vjp):
    """``AffineInjector`` (``y = x exp(s) + t``, ``(s, t) = params(c)``), fused
    like the coupling."""
    layer = segment.layers[i]

    def params(c, w):
        with segment.scope(i, w, other):
            return layer.params(ops.cast(c, y.dtype))

    (s, t), pullback = vjp(params, c, w)
    scale = ops.exp(s)
    x = (y - t) * ops.exp(-s)
    gc, gw = pullback((gy * x * scale + _per_sample(g_log_det, s), gy))
    return x, gy * scale, gc, gw


def _fused_steps():
    from cinn.blocks.coupling import AffineCoupling
    from cinn.blocks.injector import AffineInjector

    # exact types only: a subclass may change the map
    return {AffineCoupling: _coupling_step, AffineInjector: _injector_step}


def exact_zero(tensors):
    """A float32 zero computed from one element of each of ``tensors``.

    Adding it to a tensor makes a data dependence that compilers cannot remove
    (``0 * v`` is not folded, ``v`` may be NaN, and ``isnan`` makes the zero exact
    even then): whatever uses the sum waits until all of ``tensors`` exist. The
    backward pass uses it to take one block at a time (see the backend modules).
    """
    first = [ops.cast(ops.reshape(t, (-1,))[0], "float32") for t in tensors if t is not None]
    total = first[0]
    for v in first[1:]:
        total = total + v
    return ops.cast(ops.isnan(total), "float32") * 0.0


_FUSED = {}


def _plain(layers, h, c):
    log_det = ops.zeros((ops.shape(h)[0],), dtype=h.dtype)
    for layer in layers:
        h, ld = layer(h, c)
        log_det = log_det + ld
    return h, log_det


def run_segment(layers, h, c=None):
    """``(y, log_det)`` of ``layers`` applied in order to ``h`` (condition ``c``),
    differentiated by inversion (see the module docstring)."""
    backend = keras.backend.backend()
    if (not layers or backend not in ("jax", "tensorflow")
            or not all(layer.built for layer in layers)
            or any(getattr(layer, "init_from_data", False) for layer in layers)):
        return _plain(layers, h, c)
    if not _FUSED:
        _FUSED.update(_fused_steps())
    segment = Segment(layers)
    if backend == "jax":
        from cinn._reversible_jax import reversible
    else:
        from cinn._reversible_tf import reversible
    return reversible(segment, h, c)
