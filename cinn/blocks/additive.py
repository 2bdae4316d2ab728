"""NICE's blocks (Dinh, Krueger & Bengio 2015, "NICE: Non-linear Independent
Components Estimation"): the additive coupling and the diagonal scaling layer."""
import keras
from keras import ops

from cinn.blocks.base import InvertibleLayer, num_positions
from cinn.blocks.masks import MaskedCoupling


@keras.saving.register_keras_serializable(package="cinn")
class AdditiveCoupling(MaskedCoupling):
    """``y2 = x2 + t(x1, c)``, ``x1`` unchanged: volume preserving, log-det 0.

    ``mask``/``parity`` choose ``x1`` and ``x2`` as in ``cinn.blocks.masks`` (a
    channel split by default; ``"checkerboard"`` for RealNVP's spatial mask).
    The subnet's projection is zero-initialised: a new block is the identity.
    Follow a stack of them with ``DiagonalScaling`` (NICE) or an ``ActNorm`` so
    the flow can change volume.
    """

    params_per_element = 1

    def _transform(self, x, h, inverse):
        return (x - h if inverse else x + h), None


@keras.saving.register_keras_serializable(package="cinn")
class DiagonalScaling(InvertibleLayer):
    """NICE's scaling layer: ``y = x * exp(s)`` with a learned log-scale ``s`` per
    feature (vectors) or per channel (images), initialised to 0 (the identity).

    log-det: ``sum(s)`` times the number of spatial positions.
    """

    def build(self, x_shape, c_shape=None):
        self.log_scale = self.add_weight(shape=(x_shape[-1],), initializer="zeros",
                                         name="log_scale")
        super().build(x_shape, c_shape)

    def _log_det(self, x):
        return ops.broadcast_to(num_positions(x) * ops.sum(self.log_scale),
                                (ops.shape(x)[0],))

    def _forward(self, x, c):
        return x * ops.exp(self.log_scale), self._log_det(x)

    def _inverse(self, y, c):
        return y * ops.exp(-self.log_scale), -self._log_det(y)
