"""The contract every invertible block follows.

``y, log_det = block(x, c=None, inverse=False)``, with the distrax-style pair

* ``y, log_det = block.forward_and_log_det(x, c=None)``
* ``x, log_det = block.inverse_and_log_det(y, c=None)``

(``call`` dispatches on ``inverse``; both methods go through Keras' ``__call__``).

* ``x``: a batch, shape ``(batch, ..., channels)`` (images are NHWC, vectors NC);
  ``y`` is one tensor too, of shape ``block.forward_shape(x.shape)``.
* ``c``: optional condition features, same batch and (for images) same spatial size.
* ``log_det``: ``log|det J|`` of the map that was applied, one value per sample,
  shape ``(batch,)``. For the inverse it is the log-det of the inverse map,
  i.e. minus the forward one.
* Every block has ``get_config``, so ``.keras`` files round-trip.

The one block whose output goes two ways, ``Split`` (``factors_out = True``), keeps
this contract: its ``y`` has the shape of ``x``, and ``Split.separate(y)`` /
``Split.join(kept, z)`` take it apart into the half that flows on and the half
that goes to the latent, and back.
"""
import math

import keras
from keras import ops

_TWO_OVER_PI = 2.0 / math.pi


def soft_clamp(s, clamp):
    """``clamp * 2/pi * atan(s / clamp)``: smooth, odd, bounded by ``±clamp``.

    Bounding the log-scale bounds every scale in ``[exp(-clamp), exp(clamp)]``,
    so neither direction can overflow or divide by (almost) zero.
    """
    if not clamp:
        return s
    return clamp * _TWO_OVER_PI * ops.arctan(s / clamp)


def split_channels(x, k):
    """``(x[..., :k], x[..., k:])`` as one split op: its gradient is a concatenation,
    where two slices' gradients would each pad a zero tensor of the full size
    (TensorFlow's ``StridedSliceGrad`` cost a tenth of a training step)."""
    first, rest = ops.split(x, [k], axis=-1)
    return first, rest


def sum_except_batch(x):
    """Sum over every axis but the first: per-sample totals, shape ``(batch,)``."""
    if len(x.shape) == 1:
        return x
    return ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)


def num_positions(x):
    """Number of spatial positions per sample (1 for vectors) as a float tensor."""
    shape = ops.shape(x)
    n = 1
    for d in shape[1:-1]:
        n = n * d
    return ops.cast(n, x.dtype)


def zeros_per_sample(x):
    return ops.zeros((ops.shape(x)[0],), dtype=x.dtype)


def fmt_shape(shape):
    return "(" + ", ".join("batch" if i == 0 else str(d) for i, d in enumerate(shape)) + ")"


class InvertibleLayer(keras.layers.Layer):
    """Base class: subclasses implement ``_forward`` and ``_inverse`` (and, when the
    map changes the shape, ``forward_shape`` and ``inverse_shape``).

    Both directions are checked: ``x`` must have the rank and channel count the
    block first saw (the inverse input those of ``forward_shape``), and a
    condition, when one is given, must match ``x`` in batch and spatial size;
    mismatches raise a ``ValueError`` naming the expected shape.
    """

    #: set by blocks that cannot work without a condition (e.g. the injector)
    requires_condition = False
    #: set by blocks whose condition must share x's spatial size
    uses_condition = False
    #: set by the block whose output is taken apart by the model (``Split``)
    factors_out = False

    def build(self, x_shape, c_shape=None):
        self._c_spec = None if c_shape is None else tuple(c_shape)
        self.built = True

    def forward_and_log_det(self, x, c=None):
        """``x -> (y, log|det dy/dx|)``, log-det shape (batch,)."""
        return self(x, c)

    def inverse_and_log_det(self, y, c=None):
        """``y -> (x, log|det dx/dy|)``, the inverse of ``forward_and_log_det``."""
        return self(y, c, inverse=True)

    def call(self, x, c=None, inverse=False):
        self._check_inputs(x, c, inverse)
        if inverse:
            return self._inverse(x, c)
        return self._forward(x, c)

    def _forward(self, x, c):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inverse(self, y, c):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_shape(self, x_shape):
        """Shape of ``y`` for an input ``x`` of shape ``x_shape`` (default: the same)."""
        return tuple(x_shape)

    def inverse_shape(self, y_shape):
        """Shape of ``x`` for an output ``y`` of shape ``y_shape`` (default: the same)."""
        return tuple(y_shape)

    # -- shape checks -------------------------------------------------------------
    def _check_inputs(self, x, c, inverse=False):
        shape = tuple(x.shape)
        spec = getattr(self, "_x_spec", None)
        if spec is None:  # the first call fixes the rank and channels of x
            spec = self.inverse_shape(shape) if inverse else shape
            self._x_spec = spec = (None,) + tuple(spec[1:])
        if inverse:
            spec = self.forward_shape(spec)
        ok = len(shape) == len(spec) and (spec[-1] is None or shape[-1] == spec[-1])
        if not ok:
            expected = fmt_shape(tuple(spec[:-1]) + (spec[-1],))
            raise ValueError(
                f"{self.name}: expected {'inverse ' if inverse else ''}input of shape "
                f"{expected} (channels last), got {shape}"
            )
        if c is None:
            if self.requires_condition:
                raise ValueError(f"{self.name}: this block needs a condition `c`, got None")
            return
        if not (self.uses_condition or self.requires_condition):
            return
        cs, xs = tuple(c.shape), tuple(x.shape)
        if len(cs) != len(xs):
            raise ValueError(
                f"{self.name}: condition must have rank {len(xs)} like x "
                f"(expected shape {fmt_shape(xs[:-1] + ('C',))}), got {cs}"
            )
        for a, b in zip(cs[1:-1], xs[1:-1]):
            if a is not None and b is not None and a != b:
                raise ValueError(
                    f"{self.name}: condition must have the spatial size of x, "
                    f"expected shape {fmt_shape(xs[:-1] + ('C',))}, got {cs}"
                )
        cspec = getattr(self, "_c_spec", None)
        if cspec is not None and cspec[-1] is not None and cs[-1] != cspec[-1]:
            raise ValueError(
                f"{self.name}: condition must have {cspec[-1]} channels "
                f"(expected shape {fmt_shape(xs[:-1] + (cspec[-1],))}), got {cs}"
            )
