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

    def apply(self, i, trainable, other, x, c, inverse=False):
        """Block ``i`` on ``x`` with its variables set to ``trainable`` and ``other``."""
        mapping = list(zip(self.trainable[i], trainable)) + list(zip(self.other[i], other))
        with keras.StatelessScope(state_mapping=mapping, initialize_variables=False):
            return self.layers[i](x, c, inverse=inverse)

    def forward(self, x, c, trainable, other):
        """``(y, log_det)`` of the whole segment."""
        log_det = None
        for i in range(len(self.layers)):
            x, ld = self.apply(i, trainable[i], other[i], x, c)
            log_det = ld if log_det is None else log_det + ld
        return x, log_det


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
    segment = Segment(layers)
    if backend == "jax":
        from cinn._reversible_jax import reversible
    else:
        from cinn._reversible_tf import reversible
    return reversible(segment, h, c)
