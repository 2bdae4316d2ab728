"""The contract every invertible block follows.

``y, log_det = block(x, c=None, inverse=False)``

* ``x``: a batch, shape ``(batch, ..., channels)`` (images are NHWC, vectors NC).
* ``c``: optional condition features, same batch and (for images) same spatial size.
* ``log_det``: ``log|det J|`` of the map that was applied, one value per sample,
  shape ``(batch,)``. For ``inverse=True`` it is the log-det of the inverse map,
  i.e. minus the forward one.
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
    """Base class: subclasses implement ``_forward`` and ``_inverse``.

    The base class checks that ``x`` has the rank and channel count the layer
    was built for and that a condition, when one is given, matches ``x`` in batch
    and spatial size; mismatches raise a ``ValueError`` naming the expected shape.
    """

    #: set by blocks that cannot work without a condition (e.g. the injector)
    requires_condition = False
    #: set by blocks whose condition must share x's spatial size
    uses_condition = False

    def build(self, x_shape, c_shape=None):
        self._x_spec = tuple(x_shape)
        self._c_spec = None if c_shape is None else tuple(c_shape)
        self.built = True

    def call(self, x, c=None, inverse=False):
        self._check_inputs(x, c)
        if inverse:
            return self._inverse(x, c)
        return self._forward(x, c)

    def _forward(self, x, c):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inverse(self, y, c):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shape checks -------------------------------------------------------------
    def _check_inputs(self, x, c):
        spec = getattr(self, "_x_spec", None)
        if spec is not None:
            shape = tuple(x.shape)
            ok = len(shape) == len(spec) and (spec[-1] is None or shape[-1] == spec[-1])
            if not ok:
                expected = fmt_shape(tuple(spec[:-1]) + (spec[-1],))
                raise ValueError(
                    f"{self.name}: expected input of shape {expected} "
                    f"(channels last), got {tuple(shape)}"
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
