"""Monotonic rational-quadratic splines (Durkan, Bekasov, Murray & Papamakarios 2019,
"Neural Spline Flows"; Gregory & Delbourgo 1982) and the coupling that uses them.

On ``[-bound, bound]`` the map is a monotonic rational-quadratic spline of ``bins``
bins through ``bins + 1`` knots, with positive derivatives at the knots; outside it
is the identity (the boundary derivatives are 1, so the derivative is continuous).
The raw parameters of one element are ``bins`` widths, ``bins`` heights (softmax,
each at least a minimum size) and ``bins - 1`` interior derivatives
(``min_derivative + softplus(raw + log(expm1(1 - min_derivative)))``, exactly
``softplus``'s shift that makes a zero raw value give the derivative 1). All-zero
raw parameters (a new block) therefore give uniform bins of slope 1: the identity.

Numerically safe everywhere: the spline is evaluated on the input clipped to
``[-bound, bound]`` (so the branch ``where`` discards is finite, and so are its
gradients), the bin index is counted against the interior knots and clipped into
``[0, bins - 1]`` (an input on a knot or at ``±bound`` never indexes out of range),
and the inverse solves the quadratic in its stable form.
"""
import math

import keras
from keras import ops

from cinn.blocks.masks import MaskedCoupling

_TINY = 1e-30  # keeps sqrt and divisions finite, far below any float32 value that matters


def _knots(raw, bound, min_size):
    """Raw bin sizes (..., K) -> knots (..., K + 1) from ``-bound`` to ``bound``."""
    bins = raw.shape[-1]
    sizes = min_size + (1.0 - min_size * bins) * ops.softmax(raw, axis=-1)
    inner = 2.0 * bound * ops.cumsum(sizes[..., :-1], axis=-1) - bound
    edge = ops.ones_like(raw[..., :1]) * bound
    return ops.concatenate([-edge, inner, edge], axis=-1)


def spline_params(raw, bins, bound, min_width=1e-3, min_height=1e-3, min_derivative=1e-3):
    """Raw parameters (..., 3 * bins - 1) -> ``(x_knots, y_knots, derivatives)``,
    each (..., bins + 1); the first and last derivative are 1."""
    if not 0 < min_width * bins < 1 or not 0 < min_height * bins < 1:
        raise ValueError(f"minimum bin sizes times bins must lie in (0, 1), got "
                         f"{min_width} and {min_height} with {bins} bins")
    raw_w, raw_h, raw_d = ops.split(raw, [bins, 2 * bins], axis=-1)
    x_knots = _knots(raw_w, bound, min_width)
    y_knots = _knots(raw_h, bound, min_height)
    shift = math.log(math.expm1(1.0 - min_derivative))  # softplus(shift) = 1 - min_derivative
    inner = min_derivative + ops.softplus(raw_d + shift)
    one = ops.ones_like(raw[..., :1])
    return x_knots, y_knots, ops.concatenate([one, inner, one], axis=-1)


def _gather(table, index):
    return ops.take_along_axis(table, index, axis=-1)[..., 0]


def rational_quadratic_spline(x, raw, inverse=False, bins=8, bound=3.0, min_width=1e-3,
                              min_height=1e-3, min_derivative=1e-3):
    """The spline of raw parameters ``raw`` (``x.shape + (3 * bins - 1,)``) applied
    elementwise to ``x`` (its inverse when ``inverse``): ``(out, log|d out / d x|)``,
    both of ``x``'s shape. Identity with log-det 0 outside ``[-bound, bound]``."""
    x_knots, y_knots, derivs = spline_params(raw, bins, bound, min_width, min_height,
                                             min_derivative)
    inside = ops.logical_and(ops.greater_equal(x, -bound), ops.less_equal(x, bound))
    xc = ops.clip(x, -bound, bound)  # the spline branch stays finite for any x
    knots_in = y_knots if inverse else x_knots
    index = ops.sum(ops.cast(ops.greater_equal(xc[..., None], knots_in[..., 1:-1]), "int32"),
                    axis=-1)
    index = ops.clip(index, 0, bins - 1)[..., None]
    x0, x1 = _gather(x_knots, index), _gather(x_knots, index + 1)
    y0, y1 = _gather(y_knots, index), _gather(y_knots, index + 1)
    d0, d1 = _gather(derivs, index), _gather(derivs, index + 1)
    width, height = x1 - x0, y1 - y0
    slope = height / width
    curve = d0 + d1 - 2.0 * slope
    if inverse:
        dy = xc - y0
        a = height * (slope - d0) + dy * curve
        b = height * d0 - dy * curve
        c = -slope * dy
        # the root in [0, 1] of a xi^2 + b xi + c, in the form without cancellation:
        # 2c / (-b - sqrt(disc)) for b >= 0, (-b + sqrt(disc)) / 2a for b < 0 (then
        # a >= |b| > 0); each branch's divisor is made safe where it is not used
        root = ops.sqrt(ops.maximum(b * b - 4.0 * a * c, _TINY))
        b_positive = ops.greater_equal(b, 0.0)
        xi = ops.where(b_positive,
                       2.0 * c / ops.where(b_positive, -b - root, -1.0),
                       (root - b) / ops.where(b_positive, 1.0, ops.maximum(2.0 * a, _TINY)))
        xi = ops.clip(xi, 0.0, 1.0)
        out = x0 + xi * width
    else:
        xi = ops.clip((xc - x0) / width, 0.0, 1.0)
    xi1 = xi * (1.0 - xi)
    den = slope + curve * xi1
    if not inverse:
        out = y0 + height * (slope * xi * xi + d0 * xi1) / den
    deriv = slope * slope * (d1 * xi * xi + 2.0 * slope * xi1 + d0 * (1.0 - xi) ** 2)
    log_det = ops.log(deriv) - 2.0 * ops.log(den)
    if inverse:
        log_det = -log_det
    return ops.where(inside, out, x), ops.where(inside, log_det, ops.zeros_like(log_det))


class SplineConfig:
    """Mix-in: the spline's hyper-parameters, their checks and config keys."""

    def _init_spline(self, bins, bound, min_bin_width, min_bin_height, min_derivative):
        self.bins = int(bins)
        self.bound = float(bound)
        self.min_bin_width = float(min_bin_width)
        self.min_bin_height = float(min_bin_height)
        self.min_derivative = float(min_derivative)
        if self.bins < 1 or self.bound <= 0 or not 0 < self.min_derivative < 1:
            raise ValueError(f"spline needs bins >= 1, bound > 0 and 0 < min_derivative < 1, "
                             f"got {bins}, {bound}, {min_derivative}")
        for name, size in [("min_bin_width", self.min_bin_width),
                           ("min_bin_height", self.min_bin_height)]:
            if not 0 < size * self.bins < 1:
                raise ValueError(f"{name} * bins must lie in (0, 1), got {size} * {self.bins}")

    def spline(self, x, raw, inverse):
        return rational_quadratic_spline(
            x, raw, inverse, self.bins, self.bound, self.min_bin_width, self.min_bin_height,
            self.min_derivative)

    def spline_config(self):
        return {"bins": self.bins, "bound": self.bound, "min_bin_width": self.min_bin_width,
                "min_bin_height": self.min_bin_height, "min_derivative": self.min_derivative}


@keras.saving.register_keras_serializable(package="cinn")
class RationalQuadraticCoupling(SplineConfig, MaskedCoupling):
    """Rational-quadratic spline coupling (Durkan et al. 2019, "Neural Spline Flows"):
    each transformed element goes through its own monotonic spline on
    ``[-bound, bound]`` (identity outside), whose ``3 * bins - 1`` parameters the
    subnet predicts from the kept part and the condition.

    ``mask``/``parity`` as in ``cinn.blocks.masks`` (a channel split by default).
    Zero-initialised: a new block is the identity (up to rounding).
    """

    def __init__(self, subnet=None, bins=8, bound=3.0, mask="channel", parity=0,
                 min_bin_width=1e-3, min_bin_height=1e-3, min_derivative=1e-3, **kwargs):
        super().__init__(subnet, mask=mask, parity=parity, **kwargs)
        self._init_spline(bins, bound, min_bin_width, min_bin_height, min_derivative)
        self.params_per_element = 3 * self.bins - 1

    def _raw(self, part, h):
        return ops.reshape(h, tuple(ops.shape(part)) + (self.params_per_element,))

    def _transform(self, x, h, inverse):
        return self.spline(x, self._raw(x, h), inverse)

    def knots(self, x, c=None):
        """``(x_knots, y_knots, derivatives)`` of the splines that ``x`` (or its
        ``y``) goes through, each of the shape of the transformed part (see
        ``subnet_output``) plus an axis of ``bins + 1``."""
        h, part = self.subnet_output(x, c)
        return spline_params(self._raw(part, h), self.bins, self.bound, self.min_bin_width,
                             self.min_bin_height, self.min_derivative)

    def get_config(self):
        return {**super().get_config(), **self.spline_config()}
